// One-click approval links over HTTP, as an attacker and a careless mailbox would use them: tampered, expired,
// stale (an earlier stage's), used four times at once, used by someone who lost the right to sign; the token
// never reaches the logs; and the page works over plain http off localhost.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { ApprovalEvent, Role, UsedLink, UserRole } from '../../db';
import { signLink } from '../../domains/approvals/links';
import { startTestApp, TestApp } from '../helpers/app';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { waitFor } from '../helpers/wait';

let app: TestApp;
const logLines: string[] = [];

beforeAll(async () => {
  // Served over plain http on an intranet name (not localhost), and every log line captured.
  const logger = pino({ level: 'info' }, { write: (line: string) => { logLines.push(line); } });
  app = await startTestApp({ PUBLIC_URL: 'http://docket.intranet:8080' }, { logger });
  await app.startWorker();
});
afterAll(() => app.close());

/** Two stages; `u` approves in both (any of u, v; then all of u, w). */
async function twoStageFlow() {
  const { tenant, key: admin } = await buildCaller(['*']);
  const desk = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'desk', title: 'Desk', permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
  const person = async (name: string) => {
    const user = await buildUser(tenant, { name });
    await UserRole.create({ userId: user.id, roleId: desk.id, tenantId: tenant.id });
    return { user, key: await buildApiKey(user) };
  };
  const [u, v, w] = [await person('u'), await person('v'), await person('w')];
  await app.call('post', '/v1/approval-templates', admin).send({
    name: 'Contracts', objectType: 'contract',
    stages: [{ name: 'First', approvers: { users: [u.user.id, v.user.id] }, rule: 'any' }, { name: 'Second', approvers: { users: [u.user.id, w.user.id] }, rule: 'all' }],
  }).expect(201);
  const flow = (await app.call('post', '/v1/approval-flows', admin).send({ objectType: 'contract', objectId: `c-${randomUUID()}`, title: 'Hosting contract' }).expect(201)).body;
  await waitFor(async () => (await app.call('get', `/v1/approval-flows/${flow.id}`, admin)).body.stages[0].status === 'active', { what: 'stage 0 open' });
  const link = (userId: string, stage: number, action: 'approve' | 'reject' = 'approve', opts: { ttlSeconds?: number; now?: Date } = {}) => {
    const { token } = signLink({ tenantId: tenant.id, subjectType: 'approval_flow', subjectId: flow.id, userId, action, stage, ttlSeconds: opts.ttlSeconds ?? 3600, now: opts.now }, app.config.linkSecret);
    return `/v1/approval-links/${token}`;
  };
  const state = async () => (await app.call('get', `/v1/approval-flows/${flow.id}`, admin).expect(200)).body;
  const signatures = async () => ApprovalEvent.count({ where: { flowId: flow.id, type: 'signed' } });
  return { tenant, admin, desk, u, v, w, flow, link, state, signatures };
}

it('a tampered or truncated link is not valid (404), an expired one is gone (410): nothing signed either way', async () => {
  const f = await twoStageFlow();
  const good = f.link(f.u.user.id, 0);
  const token = good.split('/').pop()!;
  const [payload, mac] = token.split('.');
  // The payload re-signed by nobody: another user's id in it, the MAC left as it was.
  const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), userId: f.v.user.id })).toString('base64url');
  const tampered = [`${forgedPayload}.${mac}`, `${payload}.${mac.slice(0, -2)}AA`, `${payload}x.${mac}`, token.slice(0, 40)];
  for (const t of tampered) {
    const view = await app.call('get', `/v1/approval-links/${t}`).expect(404);
    expect(view.text).toContain('This link is not valid');
    await app.call('post', `/v1/approval-links/${t}`).type('form').send({ comment: 'x' }).expect(404);
  }
  const expired = f.link(f.u.user.id, 0, 'approve', { ttlSeconds: 60, now: new Date(Date.now() - 3_600_000) });
  expect((await app.call('get', expired).expect(410)).text).toContain('This link has expired');
  expect((await app.call('post', expired).type('form').send({}).expect(410)).text).toContain('expired');
  expect(await f.signatures()).toBe(0);
  // The genuine link still works.
  expect((await app.call('post', good).type('form').send({}).expect(200)).text).toContain('recorded');
});

it('a stage-0 link does not sign stage 1 once the flow has moved on (410), and the right stage\'s link does', async () => {
  const f = await twoStageFlow();
  const stale = f.link(f.u.user.id, 0);
  // u signs stage 0 in the app, which opens stage 1, where u approves again.
  await app.call('post', `/v1/approval-flows/${f.flow.id}/sign`, f.u.key).send({ decision: 'approve' }).expect(200);
  expect((await f.state()).currentStage).toBe(1);
  expect((await app.call('get', stale).expect(410)).text).toContain('another stage');
  expect((await app.call('post', stale).type('form').send({}).expect(410)).text).toContain('another stage');
  expect((await f.state()).stages[1].signatures).toEqual([]);
  await app.call('post', f.link(f.u.user.id, 1)).type('form').send({}).expect(200);
  expect((await f.state()).stages[1].signatures.map((s: { userId: string }) => s.userId)).toEqual([f.u.user.id]);
});

it('four simultaneous POSTs of one link sign exactly once; the others are told it was used', async () => {
  const f = await twoStageFlow();
  const path = f.link(f.u.user.id, 0);
  const answers = await Promise.all(Array.from({ length: 4 }, () => app.call('post', path).type('form').send({ comment: 'go' })));
  expect(answers.map((r) => r.status).sort()).toEqual([200, 410, 410, 410]);
  for (const r of answers.filter((x) => x.status === 410)) expect(r.text).toContain('This link was used already');
  expect(await f.signatures()).toBe(1);
  const s = await f.state();
  expect([s.currentStage, s.stages[0].signatures.length, s.stages[1].signatures.length]).toEqual([1, 1, 0]);
});

it('a link the flow refuses (a reject without its reason) stays usable', async () => {
  const f = await twoStageFlow();
  const reject = f.link(f.v.user.id, 0, 'reject');
  const refused = await app.call('post', reject).type('form').send({}).expect(409);
  expect(refused.text).toContain('A rejection needs a reason');
  expect(await UsedLink.count({ where: { tenantId: f.tenant.id } })).toBe(0);
  expect((await app.call('post', reject).type('form').send({ comment: 'Wrong supplier' }).expect(200)).text).toContain('rejected');
  expect((await f.state()).status).toBe('rejected');
});

it('a user who lost approvals.flow.sign cannot sign through an old link (403), and nothing is used up', async () => {
  const f = await twoStageFlow();
  const path = f.link(f.u.user.id, 0);
  await f.desk.update({ permissions: ['approvals.flow.read'] });
  expect((await app.call('get', path).expect(403)).text).toContain('You can no longer sign approvals');
  expect((await app.call('post', path).type('form').send({}).expect(403)).text).toContain('approvals.flow.sign');
  expect(await f.signatures()).toBe(0);
  await f.desk.update({ permissions: ['approvals.flow.sign'] });
  await app.call('post', path).type('form').send({}).expect(200);
});

it('never writes a link\'s token to the request log', async () => {
  const f = await twoStageFlow();
  const path = f.link(f.w.user.id, 1);
  const token = path.split('/').pop()!;
  logLines.length = 0;
  await app.call('get', path).expect(410); // stage 1 is not open yet
  await app.call('post', path).type('form').send({}).expect(410);
  const requests = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
  expect(requests.map((l) => [l.method, l.path, l.operation])).toEqual([
    ['GET', '/v1/approval-links/[redacted]', 'viewApprovalLink'],
    ['POST', '/v1/approval-links/[redacted]', 'confirmApprovalLink'],
  ]);
  expect(logLines.filter((l) => l.includes(token.slice(0, 24)))).toEqual([]);
});

describe('the page\'s Content-Security-Policy', () => {
  const csp = (res: { headers: Record<string, string> }) => res.headers['content-security-policy'];

  it('over plain http off localhost: no upgrade-insecure-requests, so the form posts where it came from', async () => {
    const f = await twoStageFlow();
    const page = await app.call('get', f.link(f.u.user.id, 0)).expect(200);
    expect(page.text).toContain('<form method="post">');
    expect(csp(page)).toContain("form-action 'self'");
    expect(csp(page)).not.toContain('upgrade-insecure-requests');
  });

  it('when PUBLIC_URL is https: upgrade-insecure-requests is sent', async () => {
    const secure = await startTestApp({ PUBLIC_URL: 'https://docket.example.com' });
    try {
      const res = await secure.call('get', `/v1/approval-links/${'x'.repeat(40)}`).expect(404);
      expect(csp(res)).toContain('upgrade-insecure-requests');
    } finally {
      await secure.close();
    }
  });
});
