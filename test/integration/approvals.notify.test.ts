// The approvers' emails of one stage: sent a few at a time, every outcome recorded, and a retry after a
// partial failure sends only the ones that did not go out.
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createApprovalActivities } from '../../activities/approvals';
import { createSequelize, NotificationDelivery, User } from '../../db';
import { EmailRejectedError, type EmailSender } from '../../lib/notify/email';
import { buildTenant, buildUser } from '../helpers/factories';

const sequelize = createSequelize(process.env.DATABASE_URL!);
afterAll(() => sequelize.close());

/** A mail server that answers each recipient with what `outcome` says, and remembers what it accepted. */
function fakeMail(outcome: (to: string) => 'ok' | 'down' | 'refused') {
  const accepted: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const email: EmailSender = {
    async send(msg) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      const o = outcome(msg.to);
      if (o === 'down') throw new Error(`connection to the mail server lost (${msg.to})`);
      if (o === 'refused') throw new EmailRejectedError(550, 'mailbox unavailable');
      accepted.push(msg.to);
      return { messageId: `<${msg.idempotencyKey}>` };
    },
    async close() {},
  };
  return { email, accepted, maxInFlight: () => maxInFlight };
}

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

const deliveriesOf = (flowId: string) => NotificationDelivery.findAll({ where: { subjectId: flowId }, order: [['recipient', 'ASC']] });

beforeEach(() => { heartbeats = 0; });

it('given the mail server drops one approver\'s message, the others are sent and recorded, and the retry sends only that one', async () => {
  const { users, input } = await stageOf(20);
  const unlucky = users[7].email;
  let serverDown = true;
  const mail = fakeMail((to) => (to === unlucky && serverDown ? 'down' : 'ok'));
  const acts = createApprovalActivities({ email: mail.email, linkSecret: 'x'.repeat(32), publicUrl: 'http://docket.test' });

  await expect(notify(acts, input)).rejects.toThrow('connection to the mail server lost');
  expect(mail.accepted).toHaveLength(19);
  expect(heartbeats).toBeGreaterThanOrEqual(21); // at the start and after each of the 20 emails
  expect(mail.maxInFlight()).toBeGreaterThan(1);
  expect(mail.maxInFlight()).toBeLessThanOrEqual(8);
  let rows = await deliveriesOf(input.flowId);
  expect(rows.filter((d) => d.status === 'sent')).toHaveLength(19);
  const failed = rows.find((d) => d.recipient === unlucky)!;
  expect(failed).toMatchObject({ status: 'pending', attempts: 1 });
  expect(failed.error).toContain('connection to the mail server lost');

  // Temporal's retry of the activity.
  serverDown = false;
  await expect(notify(acts, input)).resolves.toBe(1);
  expect(mail.accepted).toHaveLength(20);
  expect(mail.accepted.filter((to) => to === unlucky)).toHaveLength(1);
  rows = await deliveriesOf(input.flowId);
  expect(rows.every((d) => d.status === 'sent' && d.attempts === 1 + Number(d.recipient === unlucky) && d.error === null)).toBe(true);
});

it('given one address the mail server refuses for good, every other approver still gets their email and the refusal is what fails', async () => {
  const { users, input } = await stageOf(5);
  const refused = users[0].email;
  const mail = fakeMail((to) => (to === refused ? 'refused' : 'ok'));
  const acts = createApprovalActivities({ email: mail.email, linkSecret: 'x'.repeat(32), publicUrl: 'http://docket.test' });

  await expect(notify(acts, input)).rejects.toBeInstanceOf(EmailRejectedError);
  expect(mail.accepted.sort()).toEqual(users.slice(1).map((u) => u.email).sort());
  const rows = await deliveriesOf(input.flowId);
  expect(rows.find((d) => d.recipient === refused)).toMatchObject({ status: 'pending', attempts: 1 });
});
