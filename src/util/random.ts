import { randomBytes } from 'node:crypto';

/** Random bytes are drawn from the CSPRNG in blocks: one small randomBytes() call costs 10–20 µs. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * `bytes` fresh random bytes from the CSPRNG, encoded (nonces, stream and session ids). Bytes
 * come from a pool refilled 4 KiB at a time (as Node's randomUUID does), each used once; a
 * few hundred nanoseconds a call.
 */
export function randomString(bytes: number, encoding: 'base64' | 'base64url' | 'hex'): string {
  if (bytes > POOL_BYTES / 4) return randomBytes(bytes).toString(encoding);
  if (offset + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const out = pool.toString(encoding, offset, offset + bytes);
  offset += bytes;
  return out;
}
