/**
 * The archive's full-text search words: `searchWords` turns a body into its words (lower case,
 * Latin accents dropped, runs of letters/digits/marks), and a query's text into the words that
 * must all occur. The same function feeds both dialects (FTS5 on SQLite, a tsvector on
 * PostgreSQL), so both find exactly the same messages.
 */
import { createHash } from 'node:crypto';
import type { UserRef } from '../types.ts';

/** Longer words are cut to this many characters, in bodies and queries alike. */
const MAX_WORD_LENGTH = 64;

const WORD = /[\p{L}\p{N}\p{M}]+/gu;
/** Combining Diacritical Marks: the accents of Latin, Greek and Cyrillic letters once decomposed. */
const ACCENTS = /[\u0300-\u036f]/g;

/**
 * The distinct search words of a text: lower-cased, Latin accents removed (`Café` → `cafe`),
 * split at anything but letters, digits and combining marks, each cut to 64 characters.
 */
export function searchWords(text: string): string[] {
  const folded = text.toLowerCase().normalize('NFKD').replace(ACCENTS, '').normalize('NFC');
  const words = new Set<string>();
  for (const [word] of folded.matchAll(WORD)) {
    words.add(word.length > MAX_WORD_LENGTH ? Array.from(word).slice(0, MAX_WORD_LENGTH).join('') : word);
  }
  return [...words];
}

/**
 * A search token naming the owner, indexed with every body, so that a search intersects the
 * word's postings with the owner's instead of reading every account's matches. (A clash with
 * a real word, or between owners, would only cost speed: rows are still filtered by owner.)
 */
export function ownerToken(owner: UserRef): string {
  const key = `${owner.domain}\0${owner.username}`;
  let token = ownerTokens.get(key);
  if (token === undefined) {
    token = `o${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
    // Every archived message needs its owner's: a bounded cache of the recent ones.
    if (ownerTokens.size >= OWNER_TOKENS_CACHED) ownerTokens.clear();
    ownerTokens.set(key, token);
  }
  return token;
}

const OWNER_TOKENS_CACHED = 10_000;
const ownerTokens = new Map<string, string>();
