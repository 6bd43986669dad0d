// A permission matrix: one operation tried by each level of caller, each in a tenant of its own, the outcomes compared
// in one assertion (so a failure names every level that differs), and every refusal checked to have changed nothing.
import type { Response } from 'supertest';
import type { Tenant } from '../../db';

export interface MatrixSpec<L extends string, W extends { tenant: Tenant }> {
  levels: readonly L[];
  /** A fresh world (tenant, users, the caller's credential) for one level. */
  build: (level: L) => Promise<W>;
  call: (world: W) => Promise<Response>;
  /** What `level` should get: 'allowed', or the refusal as `refusal` describes it. */
  expected: (level: L) => string;
  /** How a refusal is described, e.g. `refused 403 PERMISSION_DENIED approvals.template.manage`. */
  refusal: (res: Response) => string;
  /** The tenant's state that a refusal must leave as it was. */
  snapshot: (tenant: Tenant) => Promise<unknown>;
}

export async function runPermissionMatrix<L extends string, W extends { tenant: Tenant }>(spec: MatrixSpec<L, W>): Promise<void> {
  const outcome: Record<string, string> = {};
  const expected: Record<string, string> = {};
  for (const level of spec.levels) {
    const world = await spec.build(level);
    const before = await spec.snapshot(world.tenant);
    const res = await spec.call(world);
    expected[level] = spec.expected(level);
    if (res.status < 300) {
      outcome[level] = 'allowed';
    } else {
      outcome[level] = spec.refusal(res);
      expect([level, await spec.snapshot(world.tenant)]).toEqual([level, before]);
    }
  }
  expect(outcome).toEqual(expected);
}
