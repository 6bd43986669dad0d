// Raw pg clients from Sequelize's pool (COPY and set-based SQL need the driver itself), and COPY text encoding.
import { finished } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Sequelize } from 'sequelize';

interface ConnectionManager {
  getConnection(o: { type: 'write' }): Promise<ClientBase>;
  releaseConnection(c: ClientBase): void;
}

/** Runs `fn` with a pooled client of `sequelize`; the client goes back to the pool afterwards. */
export async function withClient<T>(sequelize: Sequelize, fn: (db: ClientBase) => Promise<T>): Promise<T> {
  const cm = sequelize.connectionManager as unknown as ConnectionManager;
  const db = await cm.getConnection({ type: 'write' });
  try {
    return await fn(db);
  } finally {
    cm.releaseConnection(db);
  }
}

/** BEGIN … COMMIT around `fn`; ROLLBACK when it throws. */
export async function inTransaction<T>(db: ClientBase, fn: () => Promise<T>): Promise<T> {
  await db.query('BEGIN');
  try {
    const result = await fn();
    await db.query('COMMIT');
    return result;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;

/** A value as COPY's text format writes it (tab-separated, backslash escapes). */
export function copyText(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIAL_ALL, (c) => ESCAPES[c]) : s;
}

/** A Postgres array literal of text items ({"a","b"}), before COPY escaping. */
export function arrayLiteral(items: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < items.length; i++) {
    if (i) out += ',';
    out += '"' + items[i].replace(/["\\]/g, '\\$&') + '"';
  }
  return out + '}';
}

export const COPY_NULL = '\\N';

/** An open COPY … FROM STDIN: write lines, then `end()` and wait for the server to have taken them all. */
export class CopyWriter {
  private readonly stream;
  private pending: string[] = [];
  private size = 0;
  rows = 0;

  constructor(db: ClientBase, sql: string, private readonly flushAt = 256 * 1024) {
    this.stream = db.query(copyFrom(sql));
  }

  /** Adds one line (with its newline). Returns a promise when the socket is full and the writer should wait. */
  line(text: string): Promise<void> | undefined {
    this.pending.push(text);
    this.size += text.length;
    this.rows++;
    if (this.size >= this.flushAt) return this.flush();
    return undefined;
  }

  private flush(): Promise<void> | undefined {
    if (!this.pending.length) return undefined;
    const ok = this.stream.write(this.pending.join(''));
    this.pending = [];
    this.size = 0;
    return ok ? undefined : new Promise((resolve) => this.stream.once('drain', resolve));
  }

  async end(): Promise<number> {
    await this.flush();
    this.stream.end();
    await finished(this.stream);
    return this.stream.rowCount;
  }

  /** Gives up the COPY (the server rolls it back); the stream's own error, which says so, is expected and dropped. */
  abort(err: Error): void {
    this.stream.on('error', () => undefined);
    this.stream.destroy(err);
  }
}
