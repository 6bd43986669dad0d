// Input checks at the edge, before validation, handlers or Postgres see a request: NUL characters,
// JSON nesting depth, and date-times that Postgres and JavaScript can both hold.
import { FieldError } from '../lib/problems';

/** Deeper JSON is refused before it is parsed: nothing in the contract nests anywhere near this. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays/objects deeper than `max`, by one pass over the text (no recursion, no
 * parse), so a body nested 10,000 deep costs a scan and never reaches anything that recurses over it.
 */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

const NUL_MESSAGE = 'must not contain NUL (\\u0000) characters';
const SURROGATE_MESSAGE = 'must be well-formed Unicode: an unpaired surrogate (\\uD800–\\uDFFF) cannot be stored';
// JSON may spell half of a surrogate pair (`"\ud800"`); Postgres refuses such text and jsonb, which would be a 500.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const unstorable = (s: string): string | undefined => (s.includes('\0') ? NUL_MESSAGE : LONE_SURROGATE.test(s) ? SURROGATE_MESSAGE : undefined);
const pointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Where `value` holds text Postgres cannot store — a NUL character or an unpaired UTF-16 surrogate — in a
 * string or an object key, as problem `errors` under `base` (`/requestBody`, `/query`, `/path`). A name that
 * differs only by a NUL is a spoof too, so such input is refused whole. Walks with a stack, not recursion (the depth is
 * bounded by MAX_JSON_DEPTH anyway); stops after `limit` findings.
 */
export function unstorableTextErrors(value: unknown, base: string, limit = 10): FieldError[] {
  const errors: FieldError[] = [];
  const stack: [unknown, string][] = [[value, base]];
  while (stack.length && errors.length < limit) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const why = unstorable(v);
      if (why) errors.push({ path, message: why });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}/${i}`]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const at = `${path}/${pointer(k)}`;
        const why = unstorable(k);
        if (why) errors.push({ path: at, message: why });
        else stack.push([child, at]);
      }
    }
  }
  return errors;
}

// Lifted to lib/ (domains check date-times inside JSON they validate themselves, e.g. segment rules).
export { DATE_TIME_RANGE, isDateTime } from '../lib/date-time';
