// Per-field transforms of a column mapping: each takes the cell's value and gives the next one, or throws RowValueError.
import { DateTime } from 'luxon';
import type { Transform } from '../types';

export type CellValue = string | string[] | number | boolean | null;

/** A value a transform or validator refuses; becomes the row's rejection. */
export class RowValueError extends Error {
  constructor(readonly code: 'INVALID_FORMAT' | 'REQUIRED_FIELD', message: string) {
    super(message);
  }
}

type Step = (v: CellValue) => CellValue;

const isEmpty = (v: CellValue) => v === null || v === '' || (Array.isArray(v) && v.length === 0);
/** Applies `f` to a string, or to each item of a list; other values pass. */
const onText = (f: (s: string) => string): Step => (v) => (typeof v === 'string' ? f(v) : Array.isArray(v) ? v.map(f) : v);

const TRUE = new Set(['true', 'yes', 'y', '1']);
const FALSE = new Set(['false', 'no', 'n', '0']);

/** Dates repeat a lot in real files, and luxon's parser is the dearest step: remember recent answers. */
function cached<T>(f: (s: string) => T, size = 4096): (s: string) => T {
  const memo = new Map<string, T>();
  return (s) => {
    let r = memo.get(s);
    if (r === undefined && !memo.has(s)) {
      if (memo.size >= size) memo.clear();
      r = f(s);
      memo.set(s, r);
    }
    return r as T;
  };
}

export function compileTransform(t: Transform): Step {
  switch (t.op) {
    case 'trim': return onText((s) => s.trim());
    case 'lower': return onText((s) => s.toLowerCase());
    case 'upper': return onText((s) => s.toUpperCase());
    case 'default': return (v) => (isEmpty(v) ? t.value : v);
    case 'split': return (v) => {
      if (typeof v !== 'string') return v;
      const parts: string[] = [];
      for (const p of v.split(t.separator)) {
        const item = p.trim();
        if (item) parts.push(item);
      }
      return parts;
    };
    case 'map': {
      const values = new Map(Object.entries(t.values));
      const one = (s: string) => {
        const m = values.get(s);
        if (m !== undefined) return m;
        if (t.otherwise === 'reject' && s !== '') throw new RowValueError('INVALID_FORMAT', `"${s}" is not one of ${[...values.keys()].map((k) => `"${k}"`).join(', ')}`);
        return s;
      };
      return onText(one);
    }
    case 'date': {
      const zone = t.zone ?? 'UTC';
      const parse = cached((s: string): string | Error => {
        const d = DateTime.fromFormat(s, t.format, { zone, setZone: true });
        if (!d.isValid) return new Error(`"${s}" is not a date in the format ${t.format}`);
        return (t.output === 'datetime' ? d.toUTC().toISO() : d.toISODate()) as string;
      });
      return onText((s) => {
        if (s === '') return s;
        const r = parse(s.trim());
        if (r instanceof Error) throw new RowValueError('INVALID_FORMAT', r.message);
        return r;
      });
    }
    case 'number': return (v) => {
      if (typeof v !== 'string') return v;
      const s = v.trim();
      if (s === '') return null;
      // 1234.5, -3, 1e3, and a decimal comma (1234,5) as European exports write it.
      const n = /^[+-]?\d+,\d+$/.test(s) ? Number(s.replace(',', '.')) : Number(s);
      if (!Number.isFinite(n) || !/^[+-]?(\d+([.,]\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(s)) throw new RowValueError('INVALID_FORMAT', `"${v}" is not a number`);
      return n;
    };
    case 'boolean': return (v) => {
      if (typeof v !== 'string') return v;
      const s = v.trim().toLowerCase();
      if (s === '') return null;
      if (TRUE.has(s)) return true;
      if (FALSE.has(s)) return false;
      throw new RowValueError('INVALID_FORMAT', `"${v}" is not true/false, yes/no or 1/0`);
    };
  }
}

/** The transforms of one column, composed; empty strings and lists come out as null. */
export function compileTransforms(ts: readonly Transform[] = []): (cell: string) => CellValue {
  const steps = ts.map(compileTransform);
  return (cell) => {
    let v: CellValue = cell;
    for (let i = 0; i < steps.length; i++) v = steps[i](v);
    return isEmpty(v) ? null : v;
  };
}
