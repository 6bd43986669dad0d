// The stack most integration files share, opened once per file: the app (API, Postgres and Temporal from the global
// setup) with its worker, a webhook receiver and an SMTP sink on loopback that the worker mails to; closed together.
import { startTestApp, TestApp } from './app';
import { SmtpSink, SmtpSinkOptions, startSmtpSink } from './smtp-sink';
import { startWebhookReceiver, WebhookReceiver } from './webhook-receiver';

/** Webhooks to a loopback receiver, fast: the relay reads every 200 ms and retries after 200–400 ms (production: 1 s, 30 s on). */
export const FAST_WEBHOOKS = { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RELAY_EVERY_MS: '200', WEBHOOK_RETRY_INITIAL_MS: '200', WEBHOOK_RETRY_MAX_MS: '400' };

export interface Stack {
  app: TestApp;
  hooks: WebhookReceiver;
  smtp: SmtpSink;
  close(): Promise<void>;
}

export async function startStack(env: Record<string, string> = {}, opts: { smtp?: SmtpSinkOptions } = {}): Promise<Stack> {
  const hooks = await startWebhookReceiver();
  const smtp = await startSmtpSink(opts.smtp);
  const app = await startTestApp(env);
  await app.startWorker({ smtpUrl: smtp.url });
  return {
    app, hooks, smtp,
    async close() {
      await app.close();
      await hooks.close();
      await smtp.close();
    },
  };
}
