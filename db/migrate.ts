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
  // Several processes (api replicas, test workers) may boot at once: serialise on an advisory lock.
  const lockConn = await (sequelize.connectionManager as unknown as { getConnection(o: object): Promise<{ query(q: string): Promise<unknown> }> }).getConnection({ type: 'write' });
  try {
    await lockConn.query('SELECT pg_advisory_lock(727274)');
    await migrator(sequelize).up();
  } finally {
    await lockConn.query('SELECT pg_advisory_unlock(727274)');
    (sequelize.connectionManager as unknown as { releaseConnection(c: unknown): void }).releaseConnection(lockConn);
  }
}
