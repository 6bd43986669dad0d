// A mapping checked against its target, then bound to a file's header: one function from cells to staged values.
import { ImportError } from '../errors';
import type { ImportTarget, TargetField } from '../targets/types';
import type { ColumnMapping, ImportMapping, RowErrorCode } from '../types';
import { MERGE_STRATEGIES } from '../types';
import { CellValue, compileTransforms, RowValueError } from './transforms';
import { attributeValidator, fieldValidator, Validator } from './validate';

export const ATTRIBUTE_PREFIX = 'attributes.';
const ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export interface MappingProblem {
  path: string;
  message: string;
}

/** Everything wrong with a mapping for `target`, as {path, message} (JSON pointers into the mapping). */
export function mappingProblems(target: ImportTarget, m: Pick<ImportMapping, 'columns' | 'keyField' | 'mergeStrategy' | 'source'>): MappingProblem[] {
  const problems: MappingProblem[] = [];
  const seen = new Map<string, number>();
  m.columns.forEach((c, i) => {
    const path = `/columns/${i}`;
    if (!c.source || !c.source.trim()) problems.push({ path: `${path}/source`, message: 'names no source column' });
    if (c.field.startsWith(ATTRIBUTE_PREFIX)) {
      if (!target.attributes) problems.push({ path: `${path}/field`, message: `${target.name} has no attributes` });
      else if (!ATTRIBUTE_NAME.test(c.field.slice(ATTRIBUTE_PREFIX.length))) problems.push({ path: `${path}/field`, message: 'an attribute name is letters, digits, _ and - (at most 64), starting with a letter or _' });
    } else if (!target.fields.some((f) => f.name === c.field)) {
      problems.push({ path: `${path}/field`, message: `${target.name} has no field "${c.field}" (fields: ${target.fields.map((f) => f.name).join(', ')})` });
    }
    if (seen.has(c.field)) problems.push({ path: `${path}/field`, message: `"${c.field}" is mapped twice (also /columns/${seen.get(c.field)})` });
    seen.set(c.field, i);
    (c.transforms ?? []).forEach((t, j) => {
      const tp = `${path}/transforms/${j}`;
      if (t.op === 'date' && !t.format) problems.push({ path: tp, message: 'a date transform needs a format' });
      if (t.op === 'split' && !t.separator) problems.push({ path: tp, message: 'a split transform needs a separator' });
      if (t.op === 'date' && t.zone && !isZone(t.zone)) problems.push({ path: tp, message: `unknown time zone ${t.zone}` });
    });
  });
  const key = m.keyField ?? target.key;
  if (key !== target.key) problems.push({ path: '/keyField', message: `${target.name} rows are matched on ${target.key}` });
  if (!seen.has(target.key)) problems.push({ path: '/columns', message: `the key field ${target.key} is not mapped` });
  for (const f of target.fields) {
    if (f.required && !seen.has(f.name)) problems.push({ path: '/columns', message: `the required field ${f.name} is not mapped` });
  }
  if (target.attributes && [...seen.keys()].filter((k) => k.startsWith(ATTRIBUTE_PREFIX)).length > target.attributes.maxKeys) {
    problems.push({ path: '/columns', message: `at most ${target.attributes.maxKeys} attribute columns` });
  }
  if (m.mergeStrategy && !MERGE_STRATEGIES.includes(m.mergeStrategy)) problems.push({ path: '/mergeStrategy', message: `one of ${MERGE_STRATEGIES.join(', ')}` });
  return problems;
}

function isZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function assertValidMapping(target: ImportTarget, m: Pick<ImportMapping, 'columns' | 'keyField' | 'mergeStrategy' | 'source'>): void {
  const problems = mappingProblems(target, m);
  if (problems.length) throw new ImportError('INVALID_MAPPING', `The mapping does not fit ${target.name}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { errors: problems });
}

/** One mapped column bound to the header. */
interface BoundColumn {
  index: number;
  header: string;
  field: string;
  transform: (cell: string) => CellValue;
  validate: Validator;
}

export interface RowError {
  column: string | null;
  code: RowErrorCode;
  message: string;
}

export interface BoundMapping {
  /** Target fields in the order `apply` returns their values. */
  fields: readonly string[];
  /** The target fields filled ('attributes' for attribute columns). */
  mapped: ReadonlySet<string>;
  width: number;
  /** The staged values of a row (in `fields` order; attributes as one object), or why it is rejected. */
  apply(cells: readonly string[]): CellValue[] | RowError;
}

/** Finds each mapped source column in the header (exact, then ignoring case); any missing → MISSING_COLUMNS. */
export function bindMapping(target: ImportTarget, columns: readonly ColumnMapping[], header: readonly string[]): BoundMapping {
  const missing: string[] = [];
  const bound: BoundColumn[] = [];
  const fieldsByName = new Map<string, TargetField>(target.fields.map((f) => [f.name, f]));
  for (const c of columns) {
    const want = c.source.trim();
    let index = header.indexOf(want);
    if (index < 0) index = header.findIndex((h) => h.toLowerCase() === want.toLowerCase());
    if (index < 0) { missing.push(want); continue; }
    const f = fieldsByName.get(c.field);
    const validate = f ? fieldValidator(f) : attributeValidator(c.field.slice(ATTRIBUTE_PREFIX.length), target.attributes!);
    bound.push({ index, header: header[index], field: c.field, transform: compileTransforms(c.transforms), validate });
  }
  if (missing.length) {
    throw new ImportError('MISSING_COLUMNS', `The file has no column ${missing.map((m) => `"${m}"`).join(', ')} (its header: ${header.map((h) => `"${h}"`).join(', ')})`, { columns: missing, header: [...header] });
  }
  // Plain fields first in the target's order, then the attribute columns, which become one object.
  const plain = target.fields.filter((f) => bound.some((b) => b.field === f.name)).map((f) => bound.find((b) => b.field === f.name)!);
  const attrs = bound.filter((b) => b.field.startsWith(ATTRIBUTE_PREFIX));
  const attrNames = attrs.map((b) => b.field.slice(ATTRIBUTE_PREFIX.length));
  const fields = [...plain.map((b) => b.field), ...(attrs.length ? ['attributes'] : [])];
  const width = header.length;
  return {
    fields,
    mapped: new Set(fields),
    width,
    apply(cells) {
      if (cells.length !== width) {
        return { column: null, code: 'INVALID_FORMAT', message: `The row has ${cells.length} cells, the header ${width}` };
      }
      const out: CellValue[] = new Array(fields.length);
      let b: BoundColumn | undefined;
      try {
        for (let i = 0; i < plain.length; i++) {
          b = plain[i];
          out[i] = b.validate(b.transform(cells[b.index]));
        }
        if (attrs.length) {
          // Empty cells are kept as null: `replace` clears those attributes, `merge` leaves them.
          const obj: Record<string, CellValue> = {};
          for (let i = 0; i < attrs.length; i++) {
            b = attrs[i];
            obj[attrNames[i]] = b.validate(b.transform(cells[b.index]));
          }
          out[plain.length] = obj as unknown as CellValue;
        }
      } catch (err) {
        if (err instanceof RowValueError) return { column: b?.header ?? null, code: err.code, message: err.message };
        throw err;
      }
      return out;
    },
  };
}
