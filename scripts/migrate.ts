// `npm run migrate`: applies pending migrations to DATABASE_URL (the API also does this at start).
import { loadConfig } from '../config';
import { createSequelize } from '../db';
import { migrate } from '../db/migrate';

const sequelize = createSequelize(loadConfig().databaseUrl);
migrate(sequelize).then(
  () => sequelize.close().then(() => console.log('migrations applied')),
  (err) => { console.error(err); process.exit(1); },
);
