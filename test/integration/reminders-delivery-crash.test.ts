// A worker SIGKILLed while reminder deliveries are on the wire: one email accepted by the SMTP server but
// not yet recorded, one webhook request held open by its receiver. A new worker sends again exactly what
// was never recorded — same Message-ID, same Docket-Delivery id — and nothing that was.
import { randomUUID } from 'node:crypto';
import { Delivery } from '../../db';
import { IDEMPOTENCY_HEADER } from '../../lib/notify/email';
import { verifyWebhook } from '../../lib/notify/webhook';
import { createDueSoon } from '../helpers/due';
import { buildCaller, buildUser } from '../helpers/factories';
import { crashStack } from '../helpers/crash-stack';
import type { ReceivedMail } from '../helpers/smtp-sink';
import type { ReceivedWebhook } from '../helpers/webhook-receiver';
import { waitFor } from '../helpers/wait';
import { killWorker, spawnWorker } from '../helpers/worker-process';

const stack = crashStack({ webhooks: true });

// Each worker logs in to the sink under its own name, so every message says which process sent it.
const startWorker = (login: string) => spawnWorker({ WORKER_QUEUES: 'reminders', SMTP_URL: stack.smtp.urlFor(login), OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' });
const SECRET = 'whsec_delivery_crash_secret';

it('re-sends only what the killed worker never recorded: each such email once more with its Message-ID, the held webhook with its Docket-Delivery id', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const people = await Promise.all(['ada', 'bob'].map((n) => buildUser(tenant, { email: `${n}-${randomUUID().slice(0, 6)}@example.com` })));
  const tag = randomUUID().slice(0, 8);
  const isOurs = (m: ReceivedMail) => m.subject.includes(tag);

  // Reminder 2's webhook request is held open (never answered) …
  const victim = 2;
  let held: ReceivedWebhook | undefined;
  stack.hooks.hold((h) => h.path === `/${tag}/${victim}` && (held ??= h) === h);
  // … and its first email accepted waits for it, and for reminders 0 and 1 to be delivered and recorded:
  // then, with both on the wire, the worker dies before the email's 250 reaches it, so it records neither.
  const first = startWorker('w1');
  let ids: string[] = [];
  let firstAccepted: ReceivedMail | undefined;
  const killed = new Promise<void>((resolve, reject) => {
    stack.smtp.onAccepted(async (m) => {
      if (!m.subject.endsWith(`${tag}-${victim}`) || firstAccepted) return;
      firstAccepted = m;
      try {
        await stack.hooks.waitFor((h) => h === held, 60_000);
        await waitFor(async () => ids.length && (await Delivery.count({ where: { subjectId: ids.slice(0, victim), status: 'sent' } })) === victim * 3,
          { what: 'the other reminders delivered and recorded', timeoutMs: 60_000, intervalMs: 50 });
        await killWorker(first);
        resolve();
      } catch (err) {
        reject(err);
      }
    });
  });

  ids = await Promise.all([0, 1, 2].map(async (n) => (await createDueSoon((at) => stack.app.call('post', '/v1/reminders', key).send({
    subject: `delivery-crash-${tag}-${n}`, channels: ['email', 'webhook'], dueAt: at,
    recipients: { users: people.map((p) => p.id), webhooks: [{ url: `${stack.hooks.url}/${tag}/${n}`, secret: SECRET }] },
  }))).body.id as string));
  await killed;
  stack.smtp.onAccepted(undefined);
  stack.hooks.hold(undefined);

  // What the dead worker had recorded: a row it marked sent is never sent again.
  const atCrash = new Map((await Delivery.findAll({ where: { subjectId: ids } })).map((r) => [r.key, r.status]));
  const heldKey = firstAccepted!.headers[IDEMPOTENCY_HEADER.toLowerCase()];
  expect(atCrash.get(heldKey)).not.toBe('sent');
  const heldDelivery = String(held!.headers['docket-delivery']);
  expect(atCrash.get(heldDelivery)).not.toBe('sent');

  startWorker('w2');
  await waitFor(async () => {
    const rows = await Delivery.findAll({ where: { subjectId: ids } });
    return rows.length === ids.length * 3 && rows.every((r) => r.status === 'sent');
  }, { what: 'every delivery recorded sent by the new worker', timeoutMs: 90_000 });

  // Email: every recipient of every reminder got it; a key has a second copy only if its row was not
  // sent when the worker died (it was on the wire), and the copy carries the same Message-ID.
  const mails = stack.smtp.messages.filter(isOurs);
  const byKey = new Map<string, ReceivedMail[]>();
  for (const m of mails) byKey.set(m.headers[IDEMPOTENCY_HEADER.toLowerCase()], [...(byKey.get(m.headers[IDEMPOTENCY_HEADER.toLowerCase()]) ?? []), m]);
  const expectedPairs = ids.flatMap((_, n) => people.map((p) => `${n}:${p.email}`)).sort();
  expect([...new Set(mails.map((m) => `${m.subject.slice(-1)}:${m.to[0]}`))].sort()).toEqual(expectedPairs);
  expect(byKey.size).toBe(expectedPairs.length);
  let resent = 0;
  for (const [k, copies] of byKey) {
    expect(copies.length).toBeLessThanOrEqual(2);
    if (atCrash.get(k) === 'sent') expect(copies.map((c) => c.login)).toEqual(['w1']);
    if (copies.length === 2) {
      resent++;
      expect(atCrash.get(k)).not.toBe('sent');
      expect(copies.map((c) => c.login)).toEqual(['w1', 'w2']);
      expect(copies[1].headers['message-id']).toBe(copies[0].headers['message-id']);
    }
  }
  // The bound: no more copies than emails the dead worker had handed to the server without recording them.
  const unrecorded = [...byKey].filter(([k, copies]) => copies[0].login === 'w1' && atCrash.get(k) !== 'sent').length;
  expect(resent).toBeLessThanOrEqual(unrecorded);
  // The email accepted at the moment of the kill was sent again: the worker never heard the 250, and a
  // sender cannot tell that from a mail the server never got.
  expect(byKey.get(heldKey)!.map((c) => c.login)).toEqual(['w1', 'w2']);

  // Webhook: the held request came again from the new worker with the same Docket-Delivery id and a valid
  // signature, was answered, and the delivery is recorded once.
  const heldPosts = stack.hooks.received.filter((h) => h.headers['docket-delivery'] === heldDelivery);
  expect(heldPosts.map((h) => h.status)).toEqual([0, 200]);
  expect(heldPosts[1].json.deliveryId).toBe(heldDelivery);
  expect(verifyWebhook(SECRET, String(heldPosts[1].headers['docket-signature']), heldPosts[1].body)).toBe(true);
  const log = (await stack.app.call('get', `/v1/reminders/${ids[victim]}/deliveries`, key).expect(200)).body.items as { channel: string; status: string }[];
  expect(log.filter((e) => e.channel === 'webhook')).toEqual([expect.objectContaining({ status: 'sent' })]);
  // Reminders 0 and 1 were recorded before the crash: nothing of theirs was sent again.
  for (const id of ids.slice(0, victim)) {
    expect(mails.filter((m) => m.headers[IDEMPOTENCY_HEADER.toLowerCase()].includes(id)).map((m) => m.login)).toEqual(['w1', 'w1']);
  }
  // Every reminder's webhook arrived; another one twice only if it too was unrecorded at the crash.
  for (const [n] of ids.entries()) {
    const posts = stack.hooks.received.filter((h) => h.path === `/${tag}/${n}`);
    expect(posts.some((p) => p.status === 200)).toBe(true);
    expect(new Set(posts.map((p) => p.headers['docket-delivery'])).size).toBe(1);
    if (posts.length > 1) expect(atCrash.get(String(posts[0].headers['docket-delivery']))).not.toBe('sent');
  }
}, 150_000);
