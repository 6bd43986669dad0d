// `npm run migrate`: applies pending migrations to DATABASE_URL (the API also does this at start).
// `npm run migrate -- --revert <name>` rolls back <name> and every migration after it, newest first (before
// starting an older release); `npm run migrate -- --status` lists what is applied and what is pending.
import { loadDatabaseUrl } from '../config';
import { createSequelize } from '../db';
import { migrate, migrator, revert } from '../db/migrate';

const usage = 'usage: npm run migrate [-- --revert <migration name> | -- --status]';
let url: string;
try {
  url = loadDatabaseUrl();
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const args = process.argv.slice(2);
if (args.length && !(args[0] === '--status' && args.length === 1) && !(args[0] === '--revert' && args.length === 2)) {
  console.error(usage);
  process.exit(2);
}
const sequelize = createSequelize(url);

async function main(): Promise<string> {
  if (args[0] === '--status') {
    const [done, pending] = await Promise.all([migrator(sequelize).executed(), migrator(sequelize).pending()]);
    return [...done.map((m) => `applied  ${m.name}`), ...pending.map((m) => `pending  ${m.name}`)].join('\n');
  }
  if (args[0] === '--revert') return `reverted: ${(await revert(sequelize, args[1])).join(', ')}`;
  await migrate(sequelize);
  return 'migrations applied';
}

main().then(
  (said) => sequelize.close().then(() => console.log(said)),
  (err) => { console.error((err as Error).message); return sequelize.close().then(() => process.exit(1)); },
);
