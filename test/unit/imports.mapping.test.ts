// Every transform and validator of an import mapping, and binding a mapping to a file's header.
import { ImportError } from '../../domains/imports/errors';
import { bindMapping, mappingProblems } from '../../domains/imports/mapping/compile';
import { compileTransforms, RowValueError } from '../../domains/imports/mapping/transforms';
import { fieldValidator, isEmail } from '../../domains/imports/mapping/validate';
import { subscribersTarget } from '../../domains/imports/targets/subscribers';
import { usersTarget } from '../../domains/imports/targets/users';
import type { Transform } from '../../domains/imports/types';

const run = (ts: Transform[], cell: string) => compileTransforms(ts)(cell);
const refused = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof RowValueError) return err;
    throw err;
  }
  throw new Error('not refused');
};

describe('transforms', () => {
  it('trim, lower and upper change text (each item of a list too)', () => {
    expect(run([{ op: 'trim' }], '  Ada  ')).toBe('Ada');
    expect(run([{ op: 'lower' }], 'ADA@X.COM')).toBe('ada@x.com');
    expect(run([{ op: 'upper' }], 'fr')).toBe('FR');
    expect(run([{ op: 'split', separator: ';' }, { op: 'upper' }], 'a;b')).toEqual(['A', 'B']);
  });

  it('default fills an empty cell only', () => {
    expect(run([{ op: 'default', value: 'free' }], '')).toBe('free');
    expect(run([{ op: 'default', value: 'free' }], 'pro')).toBe('pro');
    expect(run([{ op: 'trim' }, { op: 'default', value: 'x' }], '   ')).toBe('x');
  });

  it('an empty cell comes out as null', () => {
    expect(run([], '')).toBeNull();
    expect(run([{ op: 'split', separator: ',' }], ' , ,')).toBeNull();
  });

  it('date parses with a luxon format into an ISO date or timestamp, and refuses what does not match', () => {
    expect(run([{ op: 'date', format: 'dd.MM.yyyy' }], '31.01.2024')).toBe('2024-01-31');
    expect(run([{ op: 'date', format: 'M/d/yyyy' }], '2/3/2024')).toBe('2024-02-03');
    expect(run([{ op: 'date', format: 'yyyy-MM-dd HH:mm', zone: 'Europe/Paris', output: 'datetime' }], '2024-07-01 12:00')).toBe('2024-07-01T10:00:00.000Z');
    expect(refused(() => run([{ op: 'date', format: 'dd.MM.yyyy' }], '2024-01-31')).code).toBe('INVALID_FORMAT');
    expect(refused(() => run([{ op: 'date', format: 'dd.MM.yyyy' }], '31.02.2024')).message).toContain('31.02.2024');
    expect(run([{ op: 'date', format: 'dd.MM.yyyy' }], '')).toBeNull();
  });

  it('split makes a list of trimmed, non-empty parts', () => {
    expect(run([{ op: 'split', separator: '|' }], ' news | vip ||')).toEqual(['news', 'vip']);
  });

  it('map replaces listed values, keeps or rejects the others', () => {
    const m: Transform = { op: 'map', values: { Y: 'active', N: 'unsubscribed' } };
    expect(run([m], 'Y')).toBe('active');
    expect(run([m], 'maybe')).toBe('maybe');
    expect(refused(() => run([{ ...m, otherwise: 'reject' } as Transform], 'maybe')).code).toBe('INVALID_FORMAT');
    expect(run([{ op: 'trim' }, { op: 'lower' }, { op: 'map', values: { yes: 'active' } }], ' YES ')).toBe('active');
  });

  it('number reads decimals, a decimal comma and exponents; refuses text', () => {
    expect(run([{ op: 'number' }], '42')).toBe(42);
    expect(run([{ op: 'number' }], '-3.5')).toBe(-3.5);
    expect(run([{ op: 'number' }], '1234,5')).toBe(1234.5);
    expect(run([{ op: 'number' }], '1e3')).toBe(1000);
    expect(refused(() => run([{ op: 'number' }], '12abc')).code).toBe('INVALID_FORMAT');
    expect(refused(() => run([{ op: 'number' }], '0x10')).code).toBe('INVALID_FORMAT');
  });

  it('boolean reads true/false, yes/no, 1/0, y/n', () => {
    expect(run([{ op: 'boolean' }], 'Yes')).toBe(true);
    expect(run([{ op: 'boolean' }], '0')).toBe(false);
    expect(refused(() => run([{ op: 'boolean' }], 'perhaps')).code).toBe('INVALID_FORMAT');
  });
});

describe('validators', () => {
  const field = (name: string) => subscribersTarget.fields.find((f) => f.name === name)!;

  it('email: trimmed and lower-cased, refused when not an address', () => {
    const v = fieldValidator(field('email'));
    expect(v(' Ada@Example.COM ')).toBe('ada@example.com');
    for (const bad of ['ada', 'ada@', '@x.com', 'a b@x.com', 'ada@x', 'a@b..com', 'x@y.c']) expect(refused(() => v(bad)).code).toBe('INVALID_FORMAT');
    expect(isEmail('ünïcode@bücher.de')).toBe(true);
  });

  it('required: an empty value is REQUIRED_FIELD', () => {
    expect(refused(() => fieldValidator(field('email'))(null)).code).toBe('REQUIRED_FIELD');
    expect(fieldValidator(field('name'))(null)).toBeNull();
  });

  it('string: over its length is INVALID_FORMAT', () => {
    expect(refused(() => fieldValidator(field('name'))('x'.repeat(201))).message).toContain('200');
  });

  it('enum: matched in any case, stored as declared; others refused', () => {
    const v = fieldValidator(field('status'));
    expect(v('Unsubscribed')).toBe('unsubscribed');
    expect(refused(() => v('gone')).code).toBe('INVALID_FORMAT');
  });

  it('list: one value becomes a list; too many items refused', () => {
    const v = fieldValidator(field('lists'));
    expect(v('news')).toEqual(['news']);
    expect(refused(() => v(Array.from({ length: 51 }, (_, i) => `l${i}`))).message).toContain('50');
  });
});

describe('mapping', () => {
  const columns = [
    { source: 'E-mail', field: 'email' },
    { source: 'Name', field: 'name', transforms: [{ op: 'trim' as const }] },
    { source: 'Plan', field: 'attributes.plan' },
    { source: 'Seats', field: 'attributes.seats', transforms: [{ op: 'number' as const }] },
  ];

  it('names every problem with a path', () => {
    const problems = mappingProblems(subscribersTarget, {
      source: {},
      columns: [{ source: 'x', field: 'phone' }, { source: 'y', field: 'attributes.bad name' }, { source: 'z', field: 'name' }, { source: 'w', field: 'name' }, { source: 'd', field: 'attributes.d', transforms: [{ op: 'date', format: '' }] }],
    });
    expect(problems).toEqual(expect.arrayContaining([
      { path: '/columns/0/field', message: expect.stringContaining('no field "phone"') },
      { path: '/columns/1/field', message: expect.stringContaining('attribute name') },
      { path: '/columns/3/field', message: expect.stringContaining('mapped twice') },
      { path: '/columns/4/transforms/0', message: expect.stringContaining('format') },
      { path: '/columns', message: expect.stringContaining('key field email') },
    ]));
    expect(mappingProblems(usersTarget, { source: {}, columns: [{ source: 'e', field: 'email' }, { source: 'a', field: 'attributes.x' }] }))
      .toEqual(expect.arrayContaining([{ path: '/columns/1/field', message: 'users has no attributes' }, { path: '/columns', message: 'the required field name is not mapped' }]));
    expect(mappingProblems(subscribersTarget, { source: {}, columns })).toEqual([]);
  });

  it('binds to the header (exact, then any case) and names the columns it cannot find', () => {
    const bound = bindMapping(subscribersTarget, columns, ['e-mail', 'Name', 'Plan', 'Seats']);
    expect(bound.fields).toEqual(['email', 'name', 'attributes']);
    expect(bound.apply(['A@X.com', ' Ada ', 'pro', '3'])).toEqual(['a@x.com', 'Ada', { plan: 'pro', seats: 3 }]);
    try {
      bindMapping(subscribersTarget, columns, ['E-mail', 'Name']);
      throw new Error('bound');
    } catch (err) {
      expect(err).toBeInstanceOf(ImportError);
      expect((err as ImportError).code).toBe('MISSING_COLUMNS');
      expect((err as ImportError).details).toMatchObject({ columns: ['Plan', 'Seats'] });
    }
  });

  it('a row gives the first error with its column; a ragged row is INVALID_FORMAT', () => {
    const bound = bindMapping(subscribersTarget, columns, ['E-mail', 'Name', 'Plan', 'Seats']);
    expect(bound.apply(['', 'Ada', 'pro', '3'])).toEqual({ column: 'E-mail', code: 'REQUIRED_FIELD', message: 'email is required' });
    expect(bound.apply(['a@x.com', 'Ada', 'pro', 'three'])).toMatchObject({ column: 'Seats', code: 'INVALID_FORMAT' });
    expect(bound.apply(['a@x.com', 'Ada', 'pro'])).toMatchObject({ column: null, code: 'INVALID_FORMAT', message: 'The row has 3 cells, the header 4' });
  });
});
