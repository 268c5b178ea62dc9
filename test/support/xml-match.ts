/**
 * Subset matching of received elements against XML patterns, in the spirit of scansion:
 * a pattern says what must be there, anything else may be there too.
 *
 * - names: same local name; when the pattern has a namespace (its own or inherited within
 *   the pattern) the element must be in that namespace. The `stream:` prefix is predeclared.
 * - attributes: every pattern attribute (other than namespace declarations) must be present
 *   with an equal value; `{{any}}` inside a value matches any run of characters, so
 *   `from='{{any}}'` only requires presence and `from='alice@localhost/{{any}}'` any resource.
 * - children: each pattern child must match a distinct element child, in the same order
 *   (other children may come before, between and after).
 * - text: compared (trimmed) only when the pattern has non-blank text of its own.
 */
import { Element, parse } from 'ltx';

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const WILDCARD = '{{any}}';

const PATTERN_ROOT = 'pattern-root';

/** Parse one pattern element. Throws on anything but exactly one root element. */
export function parsePattern(pattern: string): Element {
  let root: Element;
  try {
    root = parse(`<${PATTERN_ROOT} xmlns:stream='${NS_STREAM}'>${pattern}</${PATTERN_ROOT}>`);
  } catch (err) {
    throw new Error(`invalid XML pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  const elements = root.getChildElements();
  const stray = root.getText().trim();
  if (elements.length !== 1 || stray !== '') {
    throw new Error(`an XML pattern must be exactly one element: ${JSON.stringify(pattern)}`);
  }
  return elements[0];
}

function isNamespaceDeclaration(name: string): boolean {
  return name === 'xmlns' || name.startsWith('xmlns:');
}

function valueMatches(expected: string, actual: string): boolean {
  if (!expected.includes(WILDCARD)) return expected === actual;
  const source = expected
    .split(WILDCARD)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(`^${source}$`).test(actual);
}

/** The namespace the pattern pins, or undefined when it leaves it open. */
function patternNamespace(pattern: Element): string | undefined {
  const ns = pattern.getNS();
  return ns === undefined || ns === '' ? undefined : ns;
}

export function matches(pattern: Element, actual: Element): boolean {
  return mismatch(pattern, actual) === undefined;
}

/** Why `actual` does not match `pattern` (a short path-like explanation), or undefined if it does. */
export function mismatch(pattern: Element, actual: Element, path = ''): string | undefined {
  const here = `${path}/${pattern.name}`;
  if (pattern.getName() !== actual.getName()) return `${here}: element name is <${actual.name}>`;
  const ns = patternNamespace(pattern);
  if (ns !== undefined && actual.getNS() !== ns) return `${here}: namespace is '${actual.getNS() ?? ''}', expected '${ns}'`;
  for (const [name, expected] of Object.entries(pattern.attrs)) {
    if (isNamespaceDeclaration(name)) continue;
    const value = actual.attrs[name];
    if (value === undefined) return `${here}: attribute ${name} is missing (expected '${expected}')`;
    if (!valueMatches(String(expected), String(value))) return `${here}: attribute ${name}='${value}', expected '${expected}'`;
  }
  const text = pattern.getText().trim();
  if (text !== '' && !valueMatches(text, actual.getText().trim())) {
    return `${here}: text is ${JSON.stringify(actual.getText())}, expected ${JSON.stringify(text)}`;
  }
  // Greedy earliest matching is enough for an ordered subsequence: taking the earliest
  // possible child for each pattern child leaves the most room for the following ones.
  const candidates = actual.getChildElements();
  let next = 0;
  for (const child of pattern.getChildElements()) {
    let found = false;
    let firstReason: string | undefined;
    while (next < candidates.length) {
      const reason = mismatch(child, candidates[next++], here);
      if (reason === undefined) {
        found = true;
        break;
      }
      firstReason ??= reason;
    }
    if (!found) return firstReason ?? `${here}: no child matches <${child.name}/> (in order)`;
  }
  return undefined;
}
