// Statements whose cost depends on the data (a segment's rules, an endpoint's traffic) run under a time budget:
// Postgres cancels a statement over it, and the caller answers 4xx instead of holding a pooled connection.
import { Sequelize, Transaction } from 'sequelize';

/** Postgres cancelled the statement at its statement_timeout (SQLSTATE 57014). */
export function isStatementTimeout(err: unknown): boolean {
  for (let e = err as { code?: unknown; parent?: unknown; original?: unknown } | undefined, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    if (e.code === '57014') return true;
    e = (e.parent ?? e.original) as typeof e;
  }
  return false;
}

/** Sets what is left of `budgetMs` (counted from `started`) as the transaction's statement_timeout. */
export async function setStatementBudget(sequelize: Sequelize, transaction: Transaction, budgetMs: number, started = Date.now()): Promise<void> {
  await sequelize.query("SELECT set_config('statement_timeout', $1, true)", { bind: [String(Math.max(1, Math.round(budgetMs - (Date.now() - started))))], transaction });
}

/** Runs `work` in a transaction whose statements together get `budgetMs`. */
export async function withStatementBudget<T>(sequelize: Sequelize, budgetMs: number, work: (transaction: Transaction) => Promise<T>): Promise<T> {
  return sequelize.transaction(async (transaction) => {
    await setStatementBudget(sequelize, transaction, budgetMs);
    return work(transaction);
  });
}
