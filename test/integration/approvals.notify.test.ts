// The approvers' emails of one stage, sent through the real SMTP client to a real SMTP server (the test
// sink): a few at a time, every outcome recorded, and a retry after a partial failure sends only the ones
// that did not go out.
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createApprovalActivities } from '../../activities/approvals';
import { createSequelize, Delivery, User } from '../../db';
import { createEmailSender, EmailRejectedError, IDEMPOTENCY_HEADER, messageIdFor, type EmailSender } from '../../lib/notify/email';
import { buildTenant, buildUser } from '../helpers/factories';
import { SmtpSink, startSmtpSink } from '../helpers/smtp-sink';

const sequelize = createSequelize(process.env.DATABASE_URL!);
let sink: SmtpSink;
/** What the mail server answers each recipient with (an SMTP reply code), or undefined to accept. */
let refuse: (address: string) => number | undefined = () => undefined;
beforeAll(async () => { sink = await startSmtpSink({ rejectRecipient: (a) => refuse(a) }); });
afterAll(async () => {
  await sink.close();
  await sequelize.close();
});

/** The real SMTP sender, watched: how many of its sends are in flight at once. */
function realMail() {
  const sender = createEmailSender({ smtpUrl: sink.url, from: 'docket@example.test' });
  let inFlight = 0;
  let maxInFlight = 0;
  const email: EmailSender = {
    async send(msg) {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await sender.send(msg);
      } finally {
        inFlight--;
      }
    },
    close: () => sender.close(),
  };
  return { email, maxInFlight: () => maxInFlight };
}

const received = (to: string) => sink.messages.filter((m) => m.to.includes(to));

async function stageOf(n: number) {
  const tenant = await buildTenant();
  const users: User[] = [];
  for (let k = 0; k < n; k++) users.push(await buildUser(tenant, { email: `approver-${k}-${randomUUID().slice(0, 6)}@example.com` }));
  const flowId = randomUUID();
  return { users, input: { tenantId: tenant.id, flowId, title: 'PO-42', stage: 0, userIds: users.map((u) => u.id), kind: 'request' as const } };
}

/** Runs the activity as the worker would (with a heartbeat context), counting its heartbeats. */
let heartbeats = 0;
function notify(acts: ReturnType<typeof createApprovalActivities>, input: Parameters<ReturnType<typeof createApprovalActivities>['notifyApprovers']>[0]) {
  const env = new MockActivityEnvironment();
  env.on('heartbeat', () => { heartbeats++; });
  return env.run(acts.notifyApprovers, input);
}

const deliveriesOf = (flowId: string) => Delivery.findAll({ where: { subjectId: flowId }, order: [['recipient', 'ASC']] });

beforeEach(() => { heartbeats = 0; });

it('given the mail server turns one approver away for now (451), the others are sent and recorded, and the retry sends only that one', async () => {
  const { users, input } = await stageOf(20);
  const unlucky = users[7].email;
  refuse = (to) => (to === unlucky ? 451 : undefined);
  const mail = realMail();
  const acts = createApprovalActivities({ email: mail.email, linkSecret: 'x'.repeat(32), publicUrl: 'http://docket.test' });
  try {
    await expect(notify(acts, input)).rejects.toThrow(/451/);
    expect(users.filter((u) => received(u.email).length === 1)).toHaveLength(19);
    expect(received(unlucky)).toHaveLength(0);
    expect(heartbeats).toBeGreaterThanOrEqual(21); // at the start and after each of the 20 emails
    expect(mail.maxInFlight()).toBeGreaterThan(1);
    expect(mail.maxInFlight()).toBeLessThanOrEqual(8);
    let rows = await deliveriesOf(input.flowId);
    expect(rows.filter((d) => d.status === 'sent')).toHaveLength(19);
    const failed = rows.find((d) => d.recipient === unlucky)!;
    expect(failed).toMatchObject({ status: 'pending', attempts: 1 });
    expect(failed.error).toContain('451');

    // What arrived: the subject, one approve and one reject link per approver, the Message-ID from the delivery key.
    const mailOf = received(users[0].email)[0];
    expect(mailOf.subject).toBe('Approval requested: PO-42');
    expect(mailOf.text.match(/http:\/\/docket\.test\/v1\/approval-links\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g)).toHaveLength(2);
    const key = `approvals:${input.flowId}:0:request:${users[0].id}`;
    expect(mailOf.headers['message-id']).toBe(messageIdFor(key));
    expect(mailOf.headers[IDEMPOTENCY_HEADER.toLowerCase()]).toBe(key);

    // Temporal's retry of the activity, once the server takes the address again.
    refuse = () => undefined;
    await expect(notify(acts, input)).resolves.toBe(1);
    expect(received(unlucky)).toHaveLength(1);
    expect(users.every((u) => received(u.email).length === 1)).toBe(true);
    rows = await deliveriesOf(input.flowId);
    expect(rows.every((d) => d.status === 'sent' && d.attempts === 1 + Number(d.recipient === unlucky) && d.error === null)).toBe(true);
  } finally {
    await mail.email.close();
  }
});

it('given one address the mail server refuses for good (550), every other approver still gets their email and the refusal is what fails', async () => {
  const { users, input } = await stageOf(5);
  const refused = users[0].email;
  refuse = (to) => (to === refused ? 550 : undefined);
  const mail = realMail();
  const acts = createApprovalActivities({ email: mail.email, linkSecret: 'x'.repeat(32), publicUrl: 'http://docket.test' });
  try {
    await expect(notify(acts, input)).rejects.toBeInstanceOf(EmailRejectedError);
    expect(users.slice(1).every((u) => received(u.email).length === 1)).toBe(true);
    expect(received(refused)).toHaveLength(0);
    const rows = await deliveriesOf(input.flowId);
    expect(rows.find((d) => d.recipient === refused)).toMatchObject({ status: 'pending', attempts: 1 });
    expect(rows.find((d) => d.recipient === refused)!.error).toContain('550');
  } finally {
    refuse = () => undefined;
    await mail.email.close();
  }
});
