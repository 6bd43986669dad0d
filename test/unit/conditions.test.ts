// Template conditions: `~=` matches in linear time (RE2), within a budget, and a refused pattern is an
// error rather than a silent "does not hold".
import { compileCondition, ConditionBudget, ConditionError, MATCH_BUDGET } from '../../domains/approvals/conditions';

const holds = (expression: string, context: Record<string, unknown>) => compileCondition(expression)(context, new ConditionBudget());

it('given a catastrophic-backtracking pattern, answers in well under a second', () => {
  // /(a+)+$/ against "aaa…a!" backtracks exponentially in JavaScript's engine: 24 characters take
  // seconds there (each more doubles it; the reported stall was 40 s). RE2 does it in one pass.
  const started = process.hrtime.bigint();
  expect(holds('name ~= "(a+)+$"', { name: `${'a'.repeat(24)}!` })).toBe(false);
  expect(holds('name ~= "(a+)+$"', { name: 'a'.repeat(900) })).toBe(true);
  expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
});

it('keeps what `~=` meant: an unanchored search, with RE2 syntax', () => {
  expect(holds('supplier ~= "^ACME"', { supplier: 'ACME Ltd' })).toBe(true);
  expect(holds('supplier ~= "^ACME"', { supplier: 'The ACME' })).toBe(false);
  expect(holds('number ~= "\\\\d{4}$"', { number: 'PO-2026' })).toBe(true);
  expect(holds('total > 1000 and supplier ~= "(?i)contoso"', { total: 5000, supplier: 'CONTOSO' })).toBe(true);
  // A missing property or a number on the left simply does not hold (as before).
  expect(holds('supplier ~= "x"', {})).toBe(false);
  expect(holds('total ~= "5"', { total: 5 })).toBe(false);
});

it('refuses patterns RE2 does not support instead of treating them as "does not hold"', () => {
  expect(() => holds('name ~= "(a)\\\\1"', { name: 'aa' })).toThrow(ConditionError);
  expect(() => holds('name ~= "(?=a)"', { name: 'a' })).toThrow(/not a supported regular expression/);
});

it('refuses a match over its budget (program size × text length)', () => {
  // 3,000 instructions against 1,000 characters would take most of a second even in linear time.
  const text = 'a'.repeat(1000);
  expect(() => holds('name ~= "(?:a?){999}a{999}"', { name: text })).toThrow(/over the match budget/);
  expect(() => holds('name ~= "(?:a?){10}a{10}"', { name: text })).not.toThrow();
  expect(MATCH_BUDGET).toBeLessThanOrEqual(100_000);
});

it('shares one budget across every condition evaluated for a flow', () => {
  const budget = new ConditionBudget(50_000);
  const text = 'b'.repeat(1000);
  const cond = compileCondition('name ~= "a|c|d"');
  let evaluated = 0;
  expect(() => { for (;;) { cond({ name: text }, budget); evaluated++; } }).toThrow(/over its budget/);
  expect(evaluated).toBeGreaterThan(0);
  expect(evaluated).toBeLessThan(50);
});

it('costs at most a few tens of milliseconds for the worst match the budget admits', () => {
  // The budget is only a bound if its worst case is cheap: ~100 instructions against 1,000 characters,
  // every thread alive on every character.
  const text = 'a'.repeat(1000);
  const started = process.hrtime.bigint();
  expect(holds('name ~= "(?:a?){32}a{32}b"', { name: text })).toBe(false);
  expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(250);
});
