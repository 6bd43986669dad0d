// A worker SIGKILLed while reminder deliveries are on the wire: one email accepted by the SMTP server but
// not yet recorded. A new worker sends again exactly what was never recorded — same Message-ID — and nothing
// that was. (Reminders' webhooks are the webhook relay's deliveries since 0024: webhooks-crash.test.ts kills
// a worker with one of those on the wire.)
import { randomUUID } from 'node:crypto';
import { Delivery } from '../../db';
import { IDEMPOTENCY_HEADER } from '../../lib/notify/email';
import { createDueSoon } from '../helpers/due';
import { buildCaller, buildUser } from '../helpers/factories';
import { crashStack } from '../helpers/crash-stack';
import type { ReceivedMail } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { killWorker, spawnWorker } from '../helpers/worker-process';

const stack = crashStack();

// Each worker logs in to the sink under its own name, so every message says which process sent it.
const startWorker = (login: string) => spawnWorker({ WORKER_QUEUES: 'reminders', SMTP_URL: stack.smtp.urlFor(login) });

it('re-sends only what the killed worker never recorded: each such email once more with its Message-ID', async () => {
  const { tenant, key } = await buildCaller(['*']);
  const people = await Promise.all(['ada', 'bob'].map((n) => buildUser(tenant, { email: `${n}-${randomUUID().slice(0, 6)}@example.com` })));
  const tag = randomUUID().slice(0, 8);
  const isOurs = (m: ReceivedMail) => m.subject.includes(tag);

  // Reminder 2's first email accepted waits for reminders 0 and 1 to be delivered and recorded: then, with it
  // on the wire, the worker dies before the email's 250 reaches it, so it is not recorded.
  const victim = 2;
  const first = startWorker('w1');
  let ids: string[] = [];
  let firstAccepted: ReceivedMail | undefined;
  const killed = new Promise<void>((resolve, reject) => {
    stack.smtp.onAccepted(async (m) => {
      if (!m.subject.endsWith(`${tag}-${victim}`) || firstAccepted) return;
      firstAccepted = m;
      try {
        await waitFor(async () => ids.length && (await Delivery.count({ where: { subjectId: ids.slice(0, victim), status: 'sent' } })) === victim * 2,
          { what: 'the other reminders delivered and recorded', timeoutMs: 60_000, intervalMs: 50 });
        await killWorker(first);
        resolve();
      } catch (err) {
        reject(err);
      }
    });
  });

  ids = await Promise.all([0, 1, 2].map(async (n) => (await createDueSoon((at) => stack.app.call('post', '/v1/reminders', key).send({
    subject: `delivery-crash-${tag}-${n}`, channels: ['email'], dueAt: at,
    recipients: { users: people.map((p) => p.id) },
  }))).body.id as string));
  await killed;
  stack.smtp.onAccepted(undefined);

  // What the dead worker had recorded: a row it marked sent is never sent again.
  const atCrash = new Map((await Delivery.findAll({ where: { subjectId: ids } })).map((r) => [r.key, r.status]));
  const heldKey = firstAccepted!.headers[IDEMPOTENCY_HEADER.toLowerCase()];
  expect(atCrash.get(heldKey)).not.toBe('sent');

  startWorker('w2');
  await waitFor(async () => {
    const rows = await Delivery.findAll({ where: { subjectId: ids } });
    return rows.length === ids.length * 2 && rows.every((r) => r.status === 'sent');
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

  // Reminders 0 and 1 were recorded before the crash: nothing of theirs was sent again.
  for (const id of ids.slice(0, victim)) {
    expect(mails.filter((m) => m.headers[IDEMPOTENCY_HEADER.toLowerCase()].includes(id)).map((m) => m.login)).toEqual(['w1', 'w1']);
  }
}, 150_000);
