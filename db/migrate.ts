// Runs the umzug migrations in db/migrations (on API start, in tests, and by `npm run migrate`).
import path from 'node:path';
import { Sequelize } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';

export function migrator(sequelize: Sequelize) {
  return new Umzug({
    migrations: {
      // .ts under tsx/jest, .js once compiled to dist/.
      glob: ['migrations/*.{ts,js}', { cwd: __dirname, ignore: ['**/*.d.ts', '**/*.map'] }],
      resolve: ({ name, path: file, context }) => {
        const mod = require(file!);
        return { name: path.basename(name, path.extname(name)), up: () => mod.up({ context }), down: () => mod.down({ context }) };
      },
    },
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_migrations' }),
    logger: undefined,
  });
}

export async function migrate(sequelize: Sequelize): Promise<void> {
  await underMigrationLock(sequelize, () => migrator(sequelize).up());
}

/**
 * Rolls back `name` and every migration applied after it, newest first (`npm run migrate -- --revert <name>`),
 * for going back to a release that did not have them. Stops at the first `down` that refuses (some cannot
 * keep data the older schema cannot hold, e.g. 0025); the ones before it stay reverted. Returns what it reverted.
 */
export async function revert(sequelize: Sequelize, name: string): Promise<string[]> {
  return underMigrationLock(sequelize, async () => {
    const m = migrator(sequelize);
    if (!(await m.executed()).some((e) => e.name === name)) throw new Error(`Migration ${name} is not applied here`);
    return (await m.down({ to: name })).map((e) => e.name);
  });
}

// Several processes (api replicas, test workers) may boot at once: serialise on an advisory lock.
async function underMigrationLock<T>(sequelize: Sequelize, fn: () => Promise<T>): Promise<T> {
  const lockConn = await (sequelize.connectionManager as unknown as { getConnection(o: object): Promise<{ query(q: string): Promise<unknown> }> }).getConnection({ type: 'write' });
  try {
    await lockConn.query('SELECT pg_advisory_lock(727274)');
    return await fn();
  } finally {
    await lockConn.query('SELECT pg_advisory_unlock(727274)');
    (sequelize.connectionManager as unknown as { releaseConnection(c: unknown): void }).releaseConnection(lockConn);
  }
}
