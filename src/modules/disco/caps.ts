/**
 * XEP-0115 §5.1 verification string: a hash over the disco#info identities, features and
 * XEP-0128 extended forms, in a canonical order (sorting is "i;octet", i.e. by UTF-8 bytes,
 * which differs from JavaScript's UTF-16 order for characters beyond the BMP).
 */
import { createHash } from 'node:crypto';

export interface CapsIdentity {
  category: string;
  type: string;
  lang?: string;
  name?: string;
}

/** An XEP-0128 form: its FORM_TYPE value and its other fields. */
export interface CapsForm {
  formType: string;
  fields: { var: string; values: string[] }[];
}

function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function compareTuples(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    const c = octetCompare(a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}

/** The string S of §5.1, before hashing. */
export function capsString(identities: readonly CapsIdentity[], features: readonly string[], forms: readonly CapsForm[] = []): string {
  let s = '';
  const sortedIdentities = [...identities].sort((a, b) => compareTuples([a.category, a.type, a.lang ?? ''], [b.category, b.type, b.lang ?? '']));
  for (const id of sortedIdentities) s += `${id.category}/${id.type}/${id.lang ?? ''}/${id.name ?? ''}<`;
  for (const feature of [...features].sort(octetCompare)) s += `${feature}<`;
  for (const form of [...forms].sort((a, b) => octetCompare(a.formType, b.formType))) {
    s += `${form.formType}<`;
    for (const field of [...form.fields].sort((a, b) => octetCompare(a.var, b.var))) {
      if (field.var === 'FORM_TYPE') continue;
      s += `${field.var}<`;
      for (const value of [...field.values].sort(octetCompare)) s += `${value}<`;
    }
  }
  return s;
}

/** The 'ver' attribute: base64 of the SHA-1 of S (the only hash Meerkat advertises). */
export function capsVer(identities: readonly CapsIdentity[], features: readonly string[], forms: readonly CapsForm[] = []): string {
  return createHash('sha1').update(capsString(identities, features, forms), 'utf8').digest('base64');
}
