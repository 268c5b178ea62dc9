/**
 * Reading a XEP-0313 query: its data form (XEP-0004) and XEP-0059 result set management,
 * checked strictly, into what the archive store is asked. Values that cannot be right are
 * <bad-request/>; a field the form does not offer is <feature-not-implemented/> (§4.1.5 "If a
 * client includes a form field that the server does not recognise").
 *
 * Form fields: with, start, end (the three every server has), before-id, after-id, ids (the
 * #extended ones), and full-text-search (MongooseIM's name): every word must occur in the
 * body, ignoring case and accents. A field with no <value/> is as if absent.
 *
 * Paging: <max/> (the configured default when absent, capped by the configured maximum;
 * 0 counts without sending anything), <after/>, <before/> (empty: the last page; an id:
 * the page just before it). after-id and <after/>, or before-id and <before/>, may be given
 * together; the narrower bound applies and both ids must exist. <index/> is not supported
 * (<feature-not-implemented/>): ids page exactly, offsets would not. <flip-page/> reverses
 * the order in which a page is sent, not which messages it holds, so <first/> and <last/>
 * still name its oldest and newest message.
 */
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import { tryParseJid } from '../../router/jid.ts';
import type { ArchivePage } from '../../storage/types.ts';
import { NS_MAM } from './prefs.ts';

export const NS_DATA = 'jabber:x:data';
export const NS_RSM = 'http://jabber.org/protocol/rsm';
const NS_XDATA_VALIDATE = 'http://jabber.org/protocol/xdata-validate';
export const FULL_TEXT_FIELD = 'full-text-search';
/** Longest id, JID or search text a field may hold. */
const MAX_VALUE_LENGTH = 3072;
/** Most ids an `ids` field may list. */
const MAX_IDS = 1000;

/** The form a client gets with an IQ get (§4.1.5): every field a query may use. */
export function queryForm(): XmlElement {
  return el('query', { xmlns: NS_MAM },
    el('x', { xmlns: NS_DATA, type: 'form' },
      el('field', { var: 'FORM_TYPE', type: 'hidden' }, el('value', {}, NS_MAM)),
      el('field', { var: 'with', type: 'jid-single' }),
      el('field', { var: 'start', type: 'text-single' }),
      el('field', { var: 'end', type: 'text-single' }),
      el('field', { var: 'before-id', type: 'text-single' }),
      el('field', { var: 'after-id', type: 'text-single' }),
      el('field', { var: 'ids', type: 'list-multi' },
        el('validate', { xmlns: NS_XDATA_VALIDATE, datatype: 'xs:string' }, el('open'))),
      el('field', { var: FULL_TEXT_FIELD, type: 'text-single' })));
}

export interface ParsedQuery {
  queryid: string | undefined;
  with?: { bare: string; resource?: string };
  start?: number;
  end?: number;
  /** Exclusive lower bounds (after-id, RSM <after/>); more than one when both are given. */
  after: string[];
  /** Exclusive upper bounds (before-id, RSM <before/> with an id). */
  before: string[];
  ids?: string[];
  text?: string;
  max: number;
  /** RSM <before/>: the page nearest the end of the result set. */
  fromEnd: boolean;
  flip: boolean;
}

export interface PageLimits {
  defaultSize: number;
  maxSize: number;
}

const FIELDS = new Set(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids', FULL_TEXT_FIELD]);
const MULTI = new Set(['ids']);

export function parseQuery(payload: XmlElement, limits: PageLimits): ParsedQuery {
  const query: ParsedQuery = {
    queryid: payload.attrs.queryid,
    after: [],
    before: [],
    max: limits.defaultSize,
    fromEnd: false,
    flip: false,
  };
  if (payload.attrs.node !== undefined) throw new StanzaError('feature-not-implemented', 'user archives have no nodes');
  let form: XmlElement | undefined;
  let set: XmlElement | undefined;
  for (const child of payload.getChildren()) {
    if (child.name === 'x' && child.attrs.xmlns === NS_DATA) {
      if (form !== undefined) throw new StanzaError('bad-request', 'more than one data form');
      form = child;
    } else if (child.name === 'set' && child.attrs.xmlns === NS_RSM) {
      if (set !== undefined) throw new StanzaError('bad-request', 'more than one <set/>');
      set = child;
    } else if (child.name === 'flip-page' && (child.attrs.xmlns === undefined || child.attrs.xmlns === NS_MAM)) {
      query.flip = true;
    } else {
      throw new StanzaError('bad-request', `unexpected <${child.name}/> in the query`);
    }
  }
  if (form !== undefined) readForm(form, query);
  if (set !== undefined) readSet(set, query, limits);
  return query;
}

function readForm(form: XmlElement, query: ParsedQuery): void {
  const type = form.attrs.type;
  if (type !== 'submit') throw new StanzaError('bad-request', `the form must be of type submit, not '${type ?? ''}'`);
  const seen = new Set<string>();
  for (const field of form.getChildren('field')) {
    const name = field.attrs.var;
    if (name === undefined) throw new StanzaError('bad-request', 'a form field without var');
    if (!FIELDS.has(name)) throw new StanzaError('feature-not-implemented', `unknown form field '${name}'`);
    if (seen.has(name)) throw new StanzaError('bad-request', `form field '${name}' given twice`);
    seen.add(name);
    const values = field.getChildren('value').map((v) => v.text());
    if (values.length === 0) continue;
    if (values.length > 1 && !MULTI.has(name)) throw new StanzaError('bad-request', `form field '${name}' takes one value`);
    for (const value of values) {
      if (value.length > MAX_VALUE_LENGTH) throw new StanzaError('bad-request', `form field '${name}': value too long`);
    }
    const value = values[0];
    switch (name) {
      case 'FORM_TYPE':
        if (value !== NS_MAM) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS_MAM}`);
        break;
      case 'with': {
        const jid = tryParseJid(value.trim());
        if (jid === undefined) throw new StanzaError('bad-request', `form field 'with': not a JID: '${value}'`);
        query.with = jid.resource === '' ? { bare: jid.bare } : { bare: jid.bare, resource: jid.resource };
        break;
      }
      case 'start':
        query.start = Math.ceil(parseDateTime(value, name));
        break;
      case 'end':
        query.end = Math.floor(parseDateTime(value, name));
        break;
      case 'after-id':
        query.after.push(nonEmpty(value, name));
        break;
      case 'before-id':
        query.before.push(nonEmpty(value, name));
        break;
      case 'ids':
        if (values.length > MAX_IDS) throw new StanzaError('policy-violation', `at most ${MAX_IDS} ids per query`);
        query.ids = values.map((v) => nonEmpty(v, name));
        break;
      case FULL_TEXT_FIELD:
        query.text = value;
        break;
    }
  }
}

function readSet(set: XmlElement, query: ParsedQuery, limits: PageLimits): void {
  const seen = new Set<string>();
  for (const child of set.getChildren()) {
    if (seen.has(child.name)) throw new StanzaError('bad-request', `<${child.name}/> given twice in <set/>`);
    seen.add(child.name);
    const text = child.text();
    switch (child.name) {
      case 'max': {
        const trimmed = text.trim();
        if (!/^[0-9]{1,9}$/.test(trimmed)) throw new StanzaError('bad-request', `<max/> must be a non-negative integer, not '${text}'`);
        query.max = Math.min(Number(trimmed), limits.maxSize);
        break;
      }
      case 'after':
        query.after.push(nonEmpty(text, '<after/>'));
        break;
      case 'before':
        query.fromEnd = true;
        if (text !== '') query.before.push(nonEmpty(text, '<before/>'));
        break;
      case 'index':
        throw new StanzaError('feature-not-implemented', 'paging by <index/> is not supported; use <after/> or <before/>');
      default:
        throw new StanzaError('bad-request', `unexpected <${child.name}/> in <set/>`);
    }
  }
}

function nonEmpty(value: string, what: string): string {
  if (value === '' || value.length > MAX_VALUE_LENGTH) throw new StanzaError('bad-request', `${what}: not an archive id`);
  return value;
}

/** XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, TZD 'Z' or ±hh:mm. */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch, fractional below the millisecond. */
export function parseDateTime(value: string, field: string): number {
  const m = DATE_TIME.exec(value.trim());
  const bad = () => new StanzaError('bad-request', `form field '${field}': not an XEP-0082 date and time: '${value}'`);
  if (m === null) throw bad();
  const [, y, mo, d, h, mi, s, fraction, zone, zh, zm] = m;
  const year = Number(y), month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) throw bad();
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) throw bad();
  let offset = 0;
  if (zone !== 'Z') {
    if (Number(zh) > 23 || Number(zm) > 59) throw bad();
    offset = (zone[0] === '-' ? -1 : 1) * (Number(zh) * 60 + Number(zm)) * 60_000;
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, 0);
  return utc.getTime() - offset + (fraction === undefined ? 0 : Number(fraction) * 1000);
}

/** The <fin/> closing a query (§4.3, XEP-0059 §2.6: no first/last for an empty page). */
export function finElement(page: ArchivePage): XmlElement {
  const { messages } = page;
  const set = el('set', { xmlns: NS_RSM },
    messages.length > 0 && el('first', { index: String(page.firstIndex) }, messages[0].id),
    messages.length > 0 && el('last', {}, messages[messages.length - 1].id),
    el('count', {}, String(page.count)));
  return el('fin', { xmlns: NS_MAM, complete: page.complete ? 'true' : 'false' }, set);
}
