// Structured JSON logs (pino); every API line carries the request id.
import pino from 'pino';

export type Logger = pino.Logger;

/**
 * What a logged error never keeps: the values a database statement was given. Sequelize's errors carry the bind
 * parameters (`parameters`), the offending values (`fields`, `errors`/`aggregateErrors` items), the statement (`sql`:
 * Sequelize writes a query's `where` values and replacements into its text), and Postgres's `detail` names a key's
 * value ("Key (email)=(ada@example.com) already exists") — addresses, names, tokens that a log must not hold (subscriber
 * erasure cannot reach it). The error's message, code, table and constraint stay.
 */
const ERROR_VALUES = ['parameters', 'fields', 'errors', 'aggregateErrors', 'detail', 'value', 'sql'];
const REDACT = ERROR_VALUES.flatMap((k) => [`err.${k}`, `err.parent.${k}`, `err.original.${k}`, `err.cause.${k}`]);

export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, name, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}
