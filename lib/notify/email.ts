// The email channel: SMTP in deployed environments, the console in development.
import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { NodemailerError, SendMailOptions, Transporter } from 'nodemailer';
import { createLogger } from '../logger';

export interface EmailMessage {
  to: string;
  /** The sender, if not the sender's default (`EmailSenderOptions.from`): a campaign's own address. */
  from?: string | { name: string; address: string };
  replyTo?: string;
  subject: string;
  text: string;
  html?: string;
  headers?: Record<string, string>;
}

export interface EmailSender {
  /** Resolves once the server accepted the message; rejects with EmailRejectedError if it refused it for good. */
  send(msg: EmailMessage & { idempotencyKey: string }): Promise<{ messageId: string }>;
  /** Waits for sends in flight, then closes pooled connections. */
  close(): Promise<void>;
}

export interface EmailSenderOptions {
  /** smtp://host:port or smtps://user:pass@host:465; unset in development, where messages are logged instead. */
  smtpUrl?: string;
  from: string;
  logger?: { info(obj: object, msg?: string): void };
  /**
   * Log an unsent message's first link (development only: it is how `npm start` users click an approval
   * link). A one-click link carries a signing credential, so anywhere else the log says only that there was one.
   */
  logLinks?: boolean;
  /** Pooled SMTP connections (default 5); a campaign's sends run on their own pool, as many as its concurrency. */
  maxConnections?: number;
}

/**
 * The server refused the message with a permanent (5xx) reply: sending the same message again will
 * be refused again. Its name is stable so a Temporal retry policy can list it in nonRetryableErrorTypes.
 */
export class EmailRejectedError extends Error {
  override readonly name = 'EmailRejectedError';
  constructor(
    readonly responseCode: number,
    readonly response: string,
    options?: { cause?: unknown },
  ) {
    super(`SMTP server rejected the message (${responseCode}): ${response}`, options);
  }
}

export const IDEMPOTENCY_HEADER = 'X-Docket-Idempotency-Key';

/**
 * The same key always yields the same Message-ID, so if a retried activity re-sends a message the
 * server already accepted (the reply was lost), the receiving side can recognise the duplicate.
 * Keys must therefore be unique across tenants and message kinds (e.g. workflow id + step).
 */
export function messageIdFor(idempotencyKey: string): string {
  return `<${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}@docket>`;
}

// Our own headers win over a caller's spelling of the same name in any letter case.
const RESERVED_HEADERS = new Set([IDEMPOTENCY_HEADER.toLowerCase(), 'message-id']);

// base64url tokens never end in punctuation, so trimming it keeps a link that ends a sentence intact.
function firstLink(text: string): string | undefined {
  return text.match(/https?:\/\/[^\s<>"]+/)?.[0].replace(/[.,;:!?)\]'>]+$/, '');
}

function toEmailError(err: unknown): unknown {
  const e = err as NodemailerError;
  // 503 ("bad sequence of commands") is about the session, not the message: a new connection may succeed.
  if (typeof e?.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600 && e.responseCode !== 503) {
    return new EmailRejectedError(e.responseCode, e.response ?? e.message, { cause: err });
  }
  return err;
}

export function createEmailSender(opts: EmailSenderOptions): EmailSender {
  const dev = !opts.smtpUrl;
  const logger = opts.logger ?? (dev ? createLogger('info', 'docket-email') : undefined);
  const transport: Transporter = opts.smtpUrl
    ? nodemailer.createTransport({
        url: opts.smtpUrl,
        pool: true,
        maxConnections: opts.maxConnections ?? 5,
        // A requeue re-sends after a dropped connection; beyond a couple, let the activity retry instead.
        maxRequeues: 2,
        // Bounded well inside the activities' one-minute start-to-close timeout, so a hung server
        // surfaces as an error the activity retries rather than as a timed-out attempt.
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
        dnsTimeout: 10_000,
      })
    : nodemailer.createTransport({ jsonTransport: true });
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  async function deliver(msg: EmailMessage & { idempotencyKey: string }): Promise<{ messageId: string }> {
    const messageId = messageIdFor(msg.idempotencyKey);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(msg.headers ?? {})) {
      if (!RESERVED_HEADERS.has(name.toLowerCase())) headers[name] = value;
    }
    headers[IDEMPOTENCY_HEADER] = msg.idempotencyKey;
    const mail: SendMailOptions = { from: msg.from ?? opts.from, ...(msg.replyTo ? { replyTo: msg.replyTo } : {}), to: msg.to, subject: msg.subject, text: msg.text, html: msg.html, headers, messageId };
    let info: { rejected?: unknown[] };
    try {
      info = await transport.sendMail(mail);
    } catch (err) {
      throw toEmailError(err);
    }
    if (dev) {
      const link = firstLink(msg.text);
      logger?.info(
        { to: msg.to, subject: msg.subject, link: link && !opts.logLinks ? '[redacted: links are logged only with NODE_ENV=development]' : link, messageId },
        'email not sent (no SMTP server configured); logged instead',
      );
    } else {
      // With several addresses in `to`, the server may accept some and refuse others without failing the send.
      const rejected = info.rejected?.length ? { rejected: info.rejected } : {};
      logger?.info({ messageId, idempotencyKey: msg.idempotencyKey, ...rejected }, 'email sent');
    }
    return { messageId };
  }

  return {
    send(msg) {
      if (closed) return Promise.reject(new Error('email sender is closed'));
      const p = deliver(msg);
      inFlight.add(p);
      void p.then(
        () => inFlight.delete(p),
        () => inFlight.delete(p),
      );
      return p;
    },
    async close() {
      closed = true;
      await Promise.allSettled([...inFlight]);
      transport.close();
    },
  };
}
