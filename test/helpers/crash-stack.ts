// What a crash test kills workers around: the test app (API, Postgres, Temporal), an SMTP sink and, when asked,
// a webhook receiver — started before the file's tests and closed after them, with every spawned worker killed.
import { startTestApp, TestApp } from './app';
import { SmtpSink, startSmtpSink } from './smtp-sink';
import { startWebhookReceiver, WebhookReceiver } from './webhook-receiver';
import { killAllWorkers } from './worker-process';

export interface CrashStack {
  app: TestApp;
  smtp: SmtpSink;
  /** Only with `{ webhooks: true }`. */
  hooks: WebhookReceiver;
}

/** Call at the top of a test file; the fields are set once its beforeAll has run. */
export function crashStack(opts: { webhooks?: boolean; env?: Record<string, string> } = {}): CrashStack {
  const stack = {} as CrashStack;
  beforeAll(async () => {
    stack.smtp = await startSmtpSink();
    if (opts.webhooks) stack.hooks = await startWebhookReceiver();
    stack.app = await startTestApp(opts.env);
  });
  afterAll(async () => {
    killAllWorkers();
    await stack.app?.close();
    await stack.smtp?.close();
    await stack.hooks?.close();
  });
  return stack;
}
