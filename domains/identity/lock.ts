// The tenant's identity lock: pg_advisory_xact_lock(IDENTITY_LOCK_CLASS, hashtext(tenant)), held to the end of the
// transaction that takes it. It serialises, per tenant, everything that decides who holds what:
// - role and user edits, API key changes (domains/identity/commands.ts) and a users import's merge chunks and revert
//   (domains/imports/targets/users.ts): two admins demoting each other cannot both see the other still holding '*',
//   and an import judges its importer as the API would at that moment;
// - approval template saves (domains/approvals/commands.ts): a role a template names carries approval authority
//   (domains/approvals/authority.ts), and a grant reads which roles do inside its transaction; without the lock, a
//   grant judged before a concurrent save committed would commit after it, the role granted by someone without
//   approvals.template.manage.
//
// Lock order, so that no two transactions wait for each other: this lock FIRST, then row locks (users, roles,
// api_keys, an approval template's row, the users a merge chunk writes, its import's row). No holder of it takes
// another advisory lock. The one transaction that locks a row before it — a users import's revert, its import's row —
// refuses an import still merging (the only holder of this lock that writes that row) before it asks for this lock.
// A flow start never takes it: it locks its template's row FOR KEY SHARE only (domains/approvals/commands.ts
// insertFlow), which a template save (this lock, then the row) waits for, never the other way round.
import type { ClientBase } from 'pg';
import { Sequelize, Transaction } from 'sequelize';

/** The lock's class (the first key of pg_advisory_xact_lock); the second is hashtext(tenant id). */
export const IDENTITY_LOCK_CLASS = 727_275;

const LOCK_SQL = 'SELECT pg_advisory_xact_lock($1, hashtext($2))';

/**
 * Takes the tenant's identity lock in `transaction` (or in the transaction a pg client is in) and waits for it. First,
 * before any row lock (the order above).
 */
export async function lockTenantIdentity(db: ClientBase, tenantId: string): Promise<void>;
export async function lockTenantIdentity(db: Sequelize, tenantId: string, transaction: Transaction): Promise<void>;
export async function lockTenantIdentity(db: Sequelize | ClientBase, tenantId: string, transaction?: Transaction): Promise<void> {
  if (db instanceof Sequelize) await db.query(LOCK_SQL, { bind: [IDENTITY_LOCK_CLASS, tenantId], transaction });
  else await db.query(LOCK_SQL, [IDENTITY_LOCK_CLASS, tenantId]);
}
