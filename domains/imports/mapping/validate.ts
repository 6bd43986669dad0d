// Per-field validation of a transformed value against the target's declaration.
import type { AttributeFields, TargetField } from '../targets/types';
import { CellValue, RowValueError } from './transforms';

// Pragmatic, not RFC 5322: one @, no spaces or list punctuation, a dot in the domain, sane lengths.
const EMAIL = /^[^\s@"(),:;<>[\]\\]{1,64}@[^\s@"(),:;<>[\]\\_]+\.[^\s@"(),:;<>[\]\\_.]{2,}$/u;

export function isEmail(s: string): boolean {
  return s.length <= 320 && EMAIL.test(s) && !s.includes('..');
}

/** Emails are keys: trimmed and lower-cased before anything compares them. */
export const normalizeEmail = (s: string): string => s.trim().toLowerCase();

export type Validator = (v: CellValue) => CellValue;

export function fieldValidator(f: TargetField): Validator {
  const required = (v: CellValue) => {
    if (v === null) {
      if (f.required) throw new RowValueError('REQUIRED_FIELD', `${f.name} is required`);
      return true;
    }
    return false;
  };
  const text = (v: CellValue): string => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new RowValueError('INVALID_FORMAT', `${f.name} takes one value, not a list`);
  };
  const length = (s: string) => {
    if (f.maxLength !== undefined && s.length > f.maxLength) throw new RowValueError('INVALID_FORMAT', `${f.name} is longer than ${f.maxLength} characters`);
    return s;
  };
  switch (f.type) {
    case 'string': return (v) => (required(v) ? null : length(text(v)));
    case 'email': return (v) => {
      if (required(v)) return null;
      const s = normalizeEmail(text(v));
      if (!isEmail(s)) throw new RowValueError('INVALID_FORMAT', `"${text(v)}" is not an email address`);
      return s;
    };
    case 'enum': {
      const byLower = new Map((f.values ?? []).map((x) => [x.toLowerCase(), x]));
      return (v) => {
        if (required(v)) return null;
        const s = byLower.get(text(v).trim().toLowerCase());
        if (s === undefined) throw new RowValueError('INVALID_FORMAT', `${f.name} must be one of ${(f.values ?? []).join(', ')}, not "${text(v)}"`);
        return s;
      };
    }
    case 'list': return (v) => {
      if (required(v)) return null;
      const items = Array.isArray(v) ? v : [text(v).trim()];
      if (f.maxItems !== undefined && items.length > f.maxItems) throw new RowValueError('INVALID_FORMAT', `${f.name} has more than ${f.maxItems} items`);
      for (const item of items) length(item);
      return items;
    };
  }
}

/** An attribute value: text, a number or a boolean (never a list), text within the length limit. */
export function attributeValidator(name: string, a: AttributeFields): Validator {
  return (v) => {
    if (Array.isArray(v)) throw new RowValueError('INVALID_FORMAT', `attributes.${name} takes one value, not a list`);
    if (typeof v === 'string' && v.length > a.maxValueLength) throw new RowValueError('INVALID_FORMAT', `attributes.${name} is longer than ${a.maxValueLength} characters`);
    return v;
  };
}
