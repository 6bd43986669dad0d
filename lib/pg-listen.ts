// One Postgres connection kept LISTENing on a channel, reconnecting after a loss (with backoff).
import { Client } from 'pg';

export interface ListenOptions {
  databaseUrl: string;
  channel: string;
  /** A notification arrived (the payload, '' when none). */
  onNotify(payload: string): void;
  /**
   * Notifications may have been missed: the connection was lost, or is (re)established. Whatever the
   * notifications keep fresh should be dropped here.
   */
  onGap(): void;
  onError?(err: unknown): void;
  /** Names the connection in pg_stat_activity. */
  applicationName?: string;
}

export interface Listener {
  /** Resolves once the first LISTEN is in place (or failed: it keeps retrying in the background). */
  ready: Promise<void>;
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 10_000;

export function listen(opts: ListenOptions): Listener {
  let client: Client | undefined;
  let closed = false;
  let backoff = 250;
  let retry: NodeJS.Timeout | undefined;

  const lost = (c: Client, err?: unknown) => {
    if (client !== c) return; // already handled
    client = undefined;
    c.removeAllListeners('notification');
    c.end().catch(() => undefined);
    opts.onGap();
    if (err) opts.onError?.(err);
    if (closed) return;
    retry = setTimeout(() => { void connect(); }, backoff);
    retry.unref();
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  };

  async function connect(): Promise<void> {
    const c = new Client({ connectionString: opts.databaseUrl, application_name: opts.applicationName, keepAlive: true, connectionTimeoutMillis: 3_000 });
    client = c;
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c));
    c.on('notification', (n) => { if (n.channel === opts.channel) opts.onNotify(n.payload ?? ''); });
    try {
      await c.connect();
      await c.query(`LISTEN "${opts.channel.replace(/"/g, '""')}"`);
      if (closed) { await c.end(); return; }
      backoff = 250;
      opts.onGap(); // anything sent before LISTEN took effect was missed
    } catch (err) {
      lost(c, err);
    }
  }

  const ready = connect();
  return {
    ready,
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
