// `npm start`'s own secrets: made randomly once into the data folder and read back on later starts, so a
// development instance never signs with a value that is public in the source.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

/** The secret kept in `file` (owner-only), created with 32 random bytes on first use. */
export function ensureDevSecret(file: string): string {
  if (fs.existsSync(file)) {
    const kept = fs.readFileSync(file, 'utf8').trim();
    if (kept.length >= 32) return kept;
  }
  const secret = randomBytes(32).toString('hex');
  fs.writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}
