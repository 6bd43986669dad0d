// A real SMTP server on a free local port that keeps what it receives, so tests assert on delivered mail.
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** Envelope sender (MAIL FROM). */
  from: string;
  /** Envelope recipients (RCPT TO). */
  to: string[];
  subject: string;
  /** The text/plain body, transfer encoding undone. */
  text: string;
  html?: string;
  /** Lowercase header name → unfolded value; the last one wins for repeated headers. */
  headers: Record<string, string>;
  raw: string;
  /** The user the sender logged in as (AUTH), if it did: crash tests give each worker process its own. */
  login?: string;
}

export interface SmtpSink {
  url: string;
  port: number;
  messages: ReceivedMail[];
  waitFor(pred: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  clear(): void;
  /**
   * Runs `hook` for each message once it is stored and before its 250 reply is sent; the reply waits for
   * the hook's promise. That is the moment the server has the mail and the sender cannot know it yet: a
   * crash test SIGKILLs the sender here. `undefined` removes the hook.
   */
  onAccepted(hook: ((m: ReceivedMail) => void | Promise<void>) | undefined): void;
  /** `smtp://<login>:x@…`: a sender using it logs in as `login`, which its messages then carry. */
  urlFor(login: string): string;
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  /** Reply to RCPT TO with this SMTP code (e.g. 550 permanent, 451 transient) instead of accepting. */
  rejectRecipient?: (address: string) => number | undefined;
}

function headerValue(line: string): string {
  return line.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  const waiters = new Set<{ pred: (m: ReceivedMail) => boolean; resolve: (m: ReceivedMail) => void }>();
  let acceptedHook: ((m: ReceivedMail) => void | Promise<void>) | undefined;

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    // Pooled clients keep idle connections open; don't let them hold up the end of a test run.
    closeTimeout: 1000,
    // Any login is accepted (loopback, no TLS): it only tells which sender a message came from.
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username });
    },
    onRcptTo(address, _session, callback) {
      const code = opts.rejectRecipient?.(address.address);
      if (!code) return callback();
      const err = Object.assign(new Error(`recipient ${address.address} refused by test sink`), { responseCode: code });
      return callback(err);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', callback);
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then((parsed) => {
          const headers: Record<string, string> = {};
          for (const { key, line } of parsed.headerLines) headers[key] = headerValue(line);
          const mail: ReceivedMail = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            ...(parsed.html ? { html: parsed.html } : {}),
            headers,
            raw,
            ...(typeof session.user === 'string' ? { login: session.user } : {}),
          };
          messages.push(mail);
          for (const w of waiters) {
            if (w.pred(mail)) {
              waiters.delete(w);
              w.resolve(mail);
            }
          }
          return acceptedHook?.(mail);
        }).then(() => callback(), callback);
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      // A sender killed or cut off mid-session resets its connection: the server reports it, the sink goes on.
      server.on('error', () => undefined);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    waitFor(pred, timeoutMs = 10_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          pred,
          resolve: (m: ReceivedMail) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching mail within ${timeoutMs} ms (received ${messages.length})`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    clear() {
      messages.length = 0;
    },
    onAccepted(hook) {
      acceptedHook = hook;
    },
    urlFor(login) {
      return `smtp://${encodeURIComponent(login)}:x@127.0.0.1:${port}`;
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
