// Logged errors keep what failed and where, never the values a statement was given.
import { DatabaseError, UniqueConstraintError, ValidationErrorItem } from 'sequelize';
import { createLogger } from '../../lib/logger';

function logged(err: Error): string {
  const lines: string[] = [];
  createLogger('info', 'test', { write: (s: string) => { lines.push(s); } }).error({ err }, 'unhandled error');
  return lines.join('');
}

/** A pg error as the driver makes it: a message, and the values in `detail` (and Sequelize's copy of the binds). */
const pgError = (message: string, extra: Record<string, unknown>) => Object.assign(new Error(message), { code: '23505', table: 'subscribers', constraint: 'subscribers_email_key', sql: 'INSERT INTO subscribers (email) VALUES ($1)', parameters: ['ada@example.com'], ...extra });

it('drops the bind parameters, the key value in detail and the validation items of a unique violation', () => {
  const parent = pgError('duplicate key value violates unique constraint "subscribers_email_key"', { detail: 'Key (email)=(ada@example.com) already exists.' });
  const err = new UniqueConstraintError({
    errors: [new ValidationErrorItem('email must be unique', 'unique violation', 'email', 'ada@example.com', null as never, 'not_unique', 'unique', [])],
    fields: { email: 'ada@example.com' }, parent: parent as never,
  });
  const line = logged(err);
  expect(line).not.toContain('ada@example.com');
  const { err: out } = JSON.parse(line);
  expect(out).toMatchObject({ name: 'SequelizeUniqueConstraintError', parent: { code: '23505', constraint: 'subscribers_email_key', table: 'subscribers', detail: '[redacted]', parameters: '[redacted]' } });
});

it('drops the statement of any database error: Sequelize writes where values into its text', () => {
  const sql = `SELECT count(*) FROM "users" WHERE "email" = 'ada@example.com'`;
  const err = new DatabaseError(pgError('deadlock detected', { code: '40P01', sql, parameters: undefined }) as never);
  const { err: out } = JSON.parse(logged(err));
  expect(JSON.stringify(out)).not.toContain('ada@example.com');
  expect(out).toMatchObject({ name: 'SequelizeDatabaseError', message: 'deadlock detected', sql: '[redacted]', parent: { code: '40P01', sql: '[redacted]' } });
});

it('drops them from a database error logged as the cause of another, however deep', () => {
  const sql = `SELECT 1 FROM "subscribers" WHERE "email" = 'ada@example.com'`;
  const db = new DatabaseError(pgError('canceling statement due to statement timeout', { code: '57014', sql, parameters: ['ada@example.com'] }) as never);
  const err = new Error('the export failed', { cause: new Error('a page failed', { cause: db }) });
  const line = logged(err);
  expect(line).toContain('canceling statement due to statement timeout');
  expect(line).not.toContain('ada@example.com');
});
