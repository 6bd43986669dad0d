// A database of a test's own on the test run's Postgres, for tests that migrate down and up: the shared database
// stays at the newest schema for the suites running beside them. Creating it rebinds the models to it.
import { randomUUID } from 'node:crypto';
import { Sequelize } from 'sequelize';
import { createSequelize } from '../../db';

export async function privateDatabase(): Promise<{ name: string; url: string; sequelize: Sequelize; drop(): Promise<void> }> {
  const name = `docket_private_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = createSequelize(process.env.DATABASE_URL!);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  const sequelize = createSequelize(url.toString());
  return {
    name, url: url.toString(), sequelize,
    drop: async () => {
      await sequelize.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}
