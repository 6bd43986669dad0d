// The email channel against a real SMTP server: what arrives, how it can be deduplicated, how failures surface.
import net from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { createEmailSender, EmailRejectedError, EmailSender, messageIdFor } from '../../lib/notify/email';
import { FINAL_DELIVERY_ERRORS } from '../../workflows/reminders.api';
import { startSmtpSink, SmtpSink } from '../helpers/smtp-sink';

const FROM = 'docket@example.test';
// Long enough that quoted-printable folds it: the sink must hand back the link unbroken.
const LINK = `https://docket.example.test/v1/links/${'eyJ0ZW5hbnRJZCI6InQtMSJ9'.repeat(4)}.${'a'.repeat(43)}`;

let sink: SmtpSink;
let sender: EmailSender;

beforeAll(async () => {
  sink = await startSmtpSink({ rejectRecipient: (a) => (a.startsWith('bounce@') ? 550 : a.startsWith('busy@') ? 451 : undefined) });
  sender = createEmailSender({ smtpUrl: sink.url, from: FROM });
});
afterAll(async () => {
  await sender?.close();
  await sink?.close();
});
beforeEach(() => sink.clear());

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

it('delivers recipient, subject, text with the link, the idempotency header and a Message-ID derived from the key', async () => {
  const key = 'approval:wf-123:stage-1:u-7';
  const sent = await sender.send({
    to: 'approver@example.test',
    subject: 'Approval needed: invoice A-1',
    text: `Invoice A-1 (42.00 EUR) waits for your approval.\n\nApprove: ${LINK}\n`,
    idempotencyKey: key,
  });
  expect(sent.messageId).toBe(messageIdFor(key));
  expect(sent.messageId).toMatch(/^<[a-f0-9]{32}@docket>$/);

  const mail = await sink.waitFor((m) => m.to.includes('approver@example.test'));
  expect(mail.from).toBe(FROM);
  expect(mail.to).toEqual(['approver@example.test']);
  expect(mail.subject).toBe('Approval needed: invoice A-1');
  expect(mail.text).toContain(`Approve: ${LINK}`);
  expect(mail.html).toBeUndefined();
  expect(mail.headers['x-docket-idempotency-key']).toBe(key);
  expect(mail.headers['message-id']).toBe(sent.messageId);
  expect(mail.headers.from).toBe(FROM);
});

it('gives a re-send with the same key the same Message-ID, and another key another one', async () => {
  const msg = { to: 'dup@example.test', subject: 'Reminder', text: 'Hello' };
  const a = await sender.send({ ...msg, idempotencyKey: 'reminder:r-1:1' });
  const b = await sender.send({ ...msg, idempotencyKey: 'reminder:r-1:1' });
  const c = await sender.send({ ...msg, idempotencyKey: 'reminder:r-1:2' });
  expect(b.messageId).toBe(a.messageId);
  expect(c.messageId).not.toBe(a.messageId);
  await sink.waitFor(() => sink.messages.length === 3);
  expect(sink.messages.map((m) => m.headers['message-id'])).toEqual([a.messageId, a.messageId, c.messageId]);
});

it('sends html alongside text and passes caller headers, but not over its own', async () => {
  await sender.send({
    to: 'html@example.test',
    subject: 'Both parts',
    text: 'plain body',
    html: '<p>html <b>body</b></p>',
    headers: { 'X-Docket-Tenant': 't-1', 'message-id': '<forged@x>', 'x-docket-idempotency-key': 'forged' },
    idempotencyKey: 'k-html',
  });
  const mail = await sink.waitFor((m) => m.subject === 'Both parts');
  expect(mail.text.trim()).toBe('plain body');
  expect(mail.html).toContain('<b>body</b>');
  expect(mail.headers['x-docket-tenant']).toBe('t-1');
  expect(mail.headers['message-id']).toBe(messageIdFor('k-html'));
  expect(mail.headers['x-docket-idempotency-key']).toBe('k-html');
});

it('turns a permanent (5xx) refusal into EmailRejectedError carrying the code', async () => {
  const err = await sender.send({ to: 'bounce@example.test', subject: 's', text: 't', idempotencyKey: 'k-bounce' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(EmailRejectedError);
  expect(err).toMatchObject({ name: 'EmailRejectedError', responseCode: 550 });
  // Its name is one the delivery retry policies list as final: it is not retried.
  expect(FINAL_DELIVERY_ERRORS).toContain((err as Error).name);
  expect(sink.messages).toHaveLength(0);
});

it('keeps a transient (4xx) refusal a plain error, so the activity retries it', async () => {
  const err = await sender.send({ to: 'busy@example.test', subject: 's', text: 't', idempotencyKey: 'k-busy' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(err).not.toBeInstanceOf(EmailRejectedError);
  expect(err).toMatchObject({ responseCode: 451 });
  // Not a name the retry policies list as final, and no non-retryable failure: Temporal retries it.
  expect(FINAL_DELIVERY_ERRORS).not.toContain((err as Error).name);
  expect(err).not.toBeInstanceOf(ApplicationFailure);
});

it('rejects when the SMTP server cannot be reached', async () => {
  const unreachable = createEmailSender({ smtpUrl: `smtp://127.0.0.1:${await closedPort()}`, from: FROM });
  try {
    const err = await unreachable.send({ to: 'x@example.test', subject: 's', text: 't', idempotencyKey: 'k-down' }).catch((e: unknown) => e);
    // Created by Node's net module, outside Jest's realm: checked by shape, not instanceof Error.
    expect(err).not.toBeInstanceOf(EmailRejectedError);
    expect(err).toMatchObject({ code: 'ESOCKET', message: expect.stringContaining('ECONNREFUSED') });
  } finally {
    await unreachable.close();
  }
});

it('lets sends in flight finish on close, then refuses new ones', async () => {
  const own = createEmailSender({ smtpUrl: sink.url, from: FROM });
  const pending = own.send({ to: 'late@example.test', subject: 'In flight', text: 't', idempotencyKey: 'k-late' });
  await own.close();
  await expect(pending).resolves.toEqual({ messageId: messageIdFor('k-late') });
  expect(sink.messages.map((m) => m.subject)).toContain('In flight');
  await expect(own.send({ to: 'late@example.test', subject: 'After', text: 't', idempotencyKey: 'k-after' })).rejects.toThrow(/closed/);
});

it('without an SMTP URL, logs recipient, subject and (in development only) the first link instead of sending', async () => {
  const logged = async (logLinks: boolean | undefined) => {
    const lines: Array<{ obj: Record<string, unknown>; msg?: string }> = [];
    const dev = createEmailSender({ from: FROM, logLinks, logger: { info: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) } });
    const sent = await dev.send({ to: 'dev@example.test', subject: 'Approve?', text: `Open ${LINK}.\nOr ignore https://other.example.test`, idempotencyKey: 'k-dev' });
    await dev.close();
    expect(sent.messageId).toBe(messageIdFor('k-dev'));
    return lines;
  };
  expect(await logged(true)).toEqual([{ obj: expect.objectContaining({ to: 'dev@example.test', subject: 'Approve?', link: LINK }), msg: expect.any(String) }]);
  // Anywhere but development a one-click link is a credential: the log says there was one, never what it was.
  for (const logLinks of [false, undefined]) {
    const lines = await logged(logLinks);
    expect(lines).toEqual([{ obj: expect.objectContaining({ to: 'dev@example.test', subject: 'Approve?', link: expect.stringMatching(/^\[redacted/) }), msg: expect.any(String) }]);
    expect(JSON.stringify(lines)).not.toContain(LINK);
  }
  expect(sink.messages).toHaveLength(0);
});
