// The tenant's audience-work lock (domains/audience/segments.ts withAudienceBudget: segment previews and campaign
// audience checks) held as a preview in flight would hold it, until the test releases it.
import type { Sequelize } from 'sequelize';

/** Takes the lock in a transaction of its own; `release()` ends that transaction (and so the lock). */
export async function holdAudienceLock(sequelize: Sequelize, tenantId: string): Promise<{ release: () => Promise<void> }> {
  let end!: () => void;
  const held = new Promise<void>((r) => { end = r; });
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => { locked = r; });
  const holder = sequelize.transaction(async (transaction) => {
    await sequelize.query('SELECT pg_advisory_xact_lock(727276, hashtext($1))', { bind: [tenantId], transaction });
    locked();
    await held;
  });
  await Promise.race([isLocked, holder]);
  return { release: async () => { end(); await holder; } };
}
