// Approval template conditions: filtrex expressions over a flow's context whose regex operator (`~=`)
// runs on RE2 (linear time, no backtracking) within a cost budget, so no condition can stall the API.
import { compileExpression, type Operators } from 'filtrex';
import { RE2JS } from 're2js';

/**
 * Cost of one `~=` match, in units of RE2's worst case: the pattern's program size × the text's length
 * (RE2 simulates at most one thread per instruction per character). A match over this is refused.
 * 100,000–200,000 units took 3–5 ms at worst here (first use of a pattern, every thread alive on every
 * character; 3,000,000 took 470 ms); `^ACME`, 7 instructions, against a 200-character supplier costs 1,400.
 */
export const MATCH_BUDGET = 100_000;
/** Cost of choosing one flow's template: every condition evaluated for it together. */
export const SELECTION_BUDGET = 400_000;

/** A condition that cannot be evaluated safely (a pattern RE2 refuses, or over budget). */
export class ConditionError extends Error {
  override readonly name = 'ConditionError';
}

export class ConditionBudget {
  private used = 0;
  constructor(readonly limit = SELECTION_BUDGET) {}

  spend(units: number): void {
    this.used += units;
    if (this.used > this.limit) throw new ConditionError(`evaluating the conditions is over its budget of ${this.limit} units`);
  }
}

export type Condition = (context: Record<string, unknown>, budget: ConditionBudget) => boolean;

// Compiled once per distinct text: templates are evaluated on every start. Bounded, and simply emptied
// when full (a tenant cycling through thousands of patterns only costs recompiles).
const CACHE_SIZE = 500;
const patterns = new Map<string, RE2JS>();
const conditions = new Map<string, Condition>();

function remember<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size >= CACHE_SIZE) cache.clear();
    v = make();
    cache.set(key, v);
  }
  return v;
}

const shorten = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}…` : s);

function pattern(source: string): RE2JS {
  return remember(patterns, source, () => {
    try {
      return RE2JS.compile(source);
    } catch (err) {
      // RE2 has no backreferences or lookaround, and caps repetition counts at 1000.
      throw new ConditionError(`/${shorten(source)}/ is not a supported regular expression (RE2 syntax): ${(err as Error).message}`);
    }
  });
}

/** Compiles a condition (filtrex syntax: no globals, no prototype access); throws filtrex's error on bad syntax. */
export function compileCondition(expression: string): Condition {
  return remember(conditions, expression, () => {
    // The operator reads the budget of the evaluation running now (evaluation is synchronous).
    let budget: ConditionBudget | undefined;
    const operators: Partial<Operators> = {
      '~=': (text: unknown, source: unknown) => {
        // As filtrex's own operator: both sides must be text, else the condition does not hold.
        if (typeof text !== 'string' || typeof source !== 'string') throw new TypeError('~= compares text with a pattern');
        const re = pattern(source);
        const cost = re.programSize() * Math.max(1, text.length);
        if (cost > MATCH_BUDGET) {
          throw new ConditionError(`/${shorten(source)}/ against ${text.length} characters is over the match budget (${cost} > ${MATCH_BUDGET} units)`);
        }
        budget!.spend(cost);
        return re.test(text);
      },
    };
    // Only `~=` is replaced; filtrex keeps its own `==` and `!=` (its typings ask for them anyway).
    const evaluate = compileExpression(expression, { operators: operators as Operators });
    return (context, b) => {
      budget = b;
      try {
        const result = evaluate(context);
        // filtrex returns (not throws) what went wrong; a missing property or a type error means "does not
        // hold", but a refused pattern or an exhausted budget must not silently pick another template.
        if (result instanceof ConditionError) throw result;
        return result === true;
      } finally {
        budget = undefined;
      }
    };
  });
}
