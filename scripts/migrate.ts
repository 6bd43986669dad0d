// `npm run migrate`: applies pending migrations to DATABASE_URL (the API also does this at start).
import { loadDatabaseUrl } from '../config';
import { createSequelize } from '../db';
import { migrate } from '../db/migrate';

let url: string;
try {
  url = loadDatabaseUrl();
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const sequelize = createSequelize(url);
migrate(sequelize).then(
  () => sequelize.close().then(() => console.log('migrations applied')),
  (err) => { console.error(err); process.exit(1); },
);
