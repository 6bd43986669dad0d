// A worker SIGKILLed in the middle of a 10,000-recipient campaign: another worker resumes from the heartbeated
// cursor, every recipient receives the campaign, and the only second copies are of messages the dead worker had
// handed to the SMTP server in the batch it had not yet recorded (at most CAMPAIGN_BATCH_SIZE), each with the
// Message-ID of the first — counted at a real SMTP server.
import { CampaignRecipient } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { createCampaign, seedList } from '../helpers/campaigns';
import { buildCaller } from '../helpers/factories';
import { ReceivedMail, SmtpSink, startSmtpSink } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

const TOTAL = 10_000;
const BATCH = 200;

let app: TestApp;
let smtp: SmtpSink;
// Each worker logs in to the sink under its own name, so every message says which process sent it.
const startWorker = (login: string, env: Record<string, string> = {}) => spawnWorker({
  WORKER_QUEUES: 'campaigns', SMTP_URL: smtp.urlFor(login), CAMPAIGN_BATCH_SIZE: String(BATCH), CAMPAIGN_CONCURRENCY: '10', CAMPAIGN_CHUNK_MS: '5000', ...env,
});

beforeAll(async () => {
  smtp = await startSmtpSink();
  app = await startTestApp();
});
afterAll(async () => {
  killAllWorkers();
  await app.close();
  await smtp.close();
});

const finished = (id: string, key: string) => waitFor(async () => {
  const c = (await app.call('get', `/v1/campaigns/${id}`, key).expect(200)).body;
  return c.status === 'finished' && c;
}, { what: 'campaign finished', timeoutMs: 400_000, intervalMs: 500 });

/**
 * Everyone of the `total` recipients got the campaign and the ledger names a Message-ID they got; any second copy
 * was sent by `dead` and then by `survivor` with the same Message-ID, never a third. Returns the copies of each
 * address that got two, so a case can bound them.
 */
async function deliveredOnceOrResent(id: string, mails: ReceivedMail[], total: number, [dead, survivor]: [string, string]): Promise<ReceivedMail[][]> {
  const byAddress = new Map<string, ReceivedMail[]>();
  for (const m of mails) byAddress.set(m.to[0], [...(byAddress.get(m.to[0]) ?? []), m]);
  expect(byAddress.size).toBe(total);
  const rows = await CampaignRecipient.findAll({ where: { campaignId: id }, attributes: ['email', 'messageId'] });
  for (const r of rows) expect(byAddress.get(r.email)!.map((m) => m.headers['message-id'])).toContain(r.messageId);
  const duplicates = [...byAddress.values()].filter((copies) => copies.length > 1);
  for (const copies of duplicates) {
    expect(copies.map((c) => c.login)).toEqual([dead, survivor]);
    expect(copies[1].headers['message-id']).toBe(copies[0].headers['message-id']);
  }
  expect(mails.length - total).toBe(duplicates.length);
  return duplicates;
}

it('mails every recipient after a SIGKILL mid-send; duplicates only from the unrecorded batch, with the same Message-ID', async () => {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, TOTAL);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  const ours = new Set(emails);
  const isOurs = (m: ReceivedMail) => ours.has(m.to[0]);

  // The worker dies at the moment the server has accepted the 3,100th message and before its 250 reply: mid-batch,
  // and (5 s chunks) past the last cursor the server holds, so the retry re-reads batches it must find sent.
  const first = startWorker('w1');
  let received = 0;
  const killed = new Promise<void>((resolve, reject) => {
    smtp.onAccepted(async (m) => {
      if (!isOurs(m) || ++received !== 3_100) return;
      await killWorker(first).then(resolve, reject);
    });
  });
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  await killed;
  smtp.onAccepted(undefined);
  const sentAtCrash = await CampaignRecipient.count({ where: { campaignId: id, status: 'sent' } });
  expect(sentAtCrash).toBeLessThan(3_100);
  expect(sentAtCrash).toBeGreaterThan(0);

  // The retry comes once the dead attempt's heartbeat times out (10 s).
  startWorker('w2');
  const done = await finished(id, key);
  expect(done.stats).toMatchObject({ audienceSize: TOTAL, sent: TOTAL, failed: 0, skipped: 0, pending: 0 });

  const mails = smtp.messages.filter(isOurs);
  // The bound: a second copy only of a message the dead worker handed over in its last, unrecorded batch.
  const duplicates = await deliveredOnceOrResent(id, mails, TOTAL, ['w1', 'w2']);
  expect(duplicates.length).toBeLessThanOrEqual(BATCH);
  // Exactly what w1 handed over beyond what it recorded went twice — the message accepted at the kill among them
  // (the worker never heard its 250, and a sender cannot tell that from a message the server never got).
  expect(duplicates.length).toBe(mails.filter((m) => m.login === 'w1').length - sentAtCrash);
  expect(duplicates.length).toBeGreaterThan(0);
}, 600_000);

it('two worker processes send one campaign in lanes at once; one SIGKILLed, the other finishes it: everyone once, only its unrecorded batches twice', async () => {
  killAllWorkers();
  const total = 6_000;
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, total);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  const ours = new Set(emails);
  const isOurs = (m: ReceivedMail) => ours.has(m.to[0]);
  const lanes = { CAMPAIGN_LANES: '2', CAMPAIGN_CHUNK_MS: '1000' };
  const doomed = startWorker('l1', lanes);
  startWorker('l2', lanes);

  // Both processes are sending (each holds a lane) before l1 dies, mid-batch, at one of its own messages.
  const by = { l1: 0, l2: 0 } as Record<string, number>;
  const killed = new Promise<void>((resolve, reject) => {
    smtp.onAccepted(async (m) => {
      if (!isOurs(m) || !m.login || !(m.login in by)) return;
      by[m.login]++;
      if (m.login !== 'l1' || by.l1 < 500 || by.l2 < 500 || doomed.killed) return;
      await killWorker(doomed).then(resolve, reject);
    });
  });
  await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
  await killed;
  smtp.onAccepted(undefined);
  const sentAtCrash = await CampaignRecipient.count({ where: { campaignId: id, status: 'sent' } });
  expect(sentAtCrash).toBeLessThan(total);

  // l2 finishes its own lane, and the dead one's once its heartbeat times out (10 s).
  const done = await finished(id, key);
  expect(done.stats).toMatchObject({ audienceSize: total, sent: total, failed: 0, skipped: 0, pending: 0 });

  const mails = smtp.messages.filter(isOurs);
  // Both sent a share, and a second copy is only of what l1 handed over in the batches it had not recorded (one per
  // lane it held).
  expect(new Set(mails.map((m) => m.login))).toEqual(new Set(['l1', 'l2']));
  const duplicates = await deliveredOnceOrResent(id, mails, total, ['l1', 'l2']);
  expect(duplicates.length).toBeGreaterThan(0);
  expect(duplicates.length).toBeLessThanOrEqual(2 * BATCH);
}, 600_000);
