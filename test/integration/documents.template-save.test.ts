// Saving a document template's parts checks them (parsing, on the work pool, up to its time budget) before the
// template's row is locked: a save never holds a pooled connection or the row while its parts are parsed, so parallel
// saves of slow parts cannot drain the API's connections. Saves that race are written one after the other, each on the
// version the other left. The races are made deterministic by holding the template's row in a transaction of the
// test's own and seeing in pg_stat_activity who waits for it.
import { randomUUID } from 'node:crypto';
import { Transaction } from 'sequelize';
import { AuditEvent } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { lockWaiters, waitFor, waitForLockWaiters } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

const PARTS = { base: '<h1>{{ number }}</h1>', header: '<span>H1</span>', footer: '<span>F1</span>', css: 'h1 { color: red }', partials: { line: '<p>{{ l }}</p>' } };

async function newTemplate() {
  const { key, tenant } = await buildCaller(['documents.template.read', 'documents.template.write']);
  const body = { code: `t-${randomUUID().slice(0, 8)}`, name: 'Invoice', parts: PARTS };
  const id: string = (await app.call('post', '/v1/document-templates', key).send(body).expect(201)).body.id;
  return { key, tenant, id, body };
}

const writePart = (id: string, key: string, part: string, text: string) =>
  app.call('put', `/v1/document-templates/${id}/parts/${part}`, key).set('Content-Type', 'text/plain').send(text);

/** A request sent now; `answered` says whether its answer has come. */
function send(req: PromiseLike<{ status: number; body: Record<string, unknown> }>) {
  const state = { answered: false };
  const answer = Promise.resolve(req).then((res) => { state.answered = true; return res; });
  return { answer, state };
}

const holders: { release: () => Promise<void> }[] = [];
// A test that failed half-way must not leave a row held: the file's app could not close.
afterEach(async () => { await Promise.all(holders.splice(0).map((h) => h.release())); });

/**
 * The template's row locked FOR UPDATE by a transaction of the test's own (a save in progress, as far as the API can
 * tell) until `release(then)`, which runs `then` in it and commits. The lock is asked for at once; `locked()` says
 * whether it was given (another holder makes it wait).
 *
 * `afterQueued`: the holder first locks the table (EXCLUSIVE), so it gets the row only after every transaction that
 * holds or already waits for one of its rows has ended, and before any that asks for a row later. Waiting for the row
 * alone does not fix that order: once a save updates the row, the next waiters race for its new version.
 */
function holdRow(id: string, { afterQueued = false } = {}) {
  let release!: (then?: (t: Transaction) => Promise<unknown>) => void;
  const released = new Promise<((t: Transaction) => Promise<unknown>) | undefined>((r) => { release = r; });
  let locked = false;
  const holder = app.sequelize.transaction(async (t) => {
    if (afterQueued) await app.sequelize.query('LOCK TABLE document_templates IN EXCLUSIVE MODE', { transaction: t });
    await app.sequelize.query('SELECT 1 FROM document_templates WHERE id = $1 FOR UPDATE', { bind: [id], transaction: t });
    locked = true;
    await (await released)?.(t);
  });
  const held = { locked: () => locked, release: async (then?: (t: Transaction) => Promise<unknown>) => { release(then); await holder; } };
  holders.push(held);
  return held;
}

/** Statements on document_templates: the saves (the holder never waits unless told). */
const TEMPLATES = '%document_templates%';
const waiters = (n: number, what: string) => waitForLockWaiters(app.sequelize, TEMPLATES, n, { timeoutMs: 30_000, intervalMs: 50, what });

const versionsOf = async (id: string, key: string) =>
  (await app.call('get', `/v1/document-templates/${id}/versions`, key).expect(200)).body.items as { version: number; name: string; parts: typeof PARTS }[];

describe('a template save checks its parts before it locks the template', () => {
  it('a part that parses past the budget is refused (422 TEMPLATE_RENDER_LIMIT) while the row is held elsewhere, never waiting for it; other tenants are served meanwhile', async () => {
    const { key, id } = await newTemplate();
    const other = await newTemplate();
    const row = holdRow(id);
    await waitFor(async () => row.locked(), { what: 'the test holding the template row' });
    // Within the caps (base ≤ 500,000 characters), but liquidjs's parse of it is super-linear: seconds past the budget.
    const saving = send(writePart(id, key, 'base', '{{a}}'.repeat(99_000)));
    let mostWaiting = 0;
    let otherServed = false;
    // The answer must come while the row is still held; a save that locked before checking would wait here for good.
    const deadline = Date.now() + 45_000;
    while (!saving.state.answered && Date.now() < deadline) {
      mostWaiting = Math.max(mostWaiting, await lockWaiters(app.sequelize, TEMPLATES));
      if (!otherServed) otherServed = (await app.call('get', `/v1/document-templates/${other.id}`, other.key)).status === 200;
      await new Promise((r) => setTimeout(r, 100));
    }
    const answeredWhileHeld = saving.state.answered;
    await row.release();
    const res = await saving.answer;
    expect({ answeredWhileHeld, mostWaiting }).toEqual({ answeredWhileHeld: true, mostWaiting: 0 });
    expect([res.status, res.body.code]).toEqual([422, 'TEMPLATE_RENDER_LIMIT']);
    expect(otherServed).toBe(true);
    // Nothing saved.
    const now = (await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body;
    expect([now.version, now.parts.base]).toEqual([1, PARTS.base]);
  }, 90_000);

  it('a part with a syntax error is refused (422) while the row is held elsewhere; a stale If-Match (412) too, both writing nothing', async () => {
    const { key, id } = await newTemplate();
    const row = holdRow(id);
    await waitFor(async () => row.locked(), { what: 'the test holding the template row' });
    const bad = await writePart(id, key, 'header', '{% if %}').timeout(20_000);
    expect([bad.status, bad.body.code]).toEqual([422, 'TEMPLATE_SYNTAX_ERROR']);
    const stale = await writePart(id, key, 'header', 'fine').set('If-Match', '"v7"').timeout(20_000);
    expect([stale.status, stale.body.code]).toEqual([412, 'PRECONDITION_FAILED']);
    await row.release();
    expect((await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body.version).toBe(1);
  });
});

describe('saves that race are written one after the other', () => {
  it('two parts written at once: consecutive versions, the second written into the first\'s version, neither lost; each audited', async () => {
    const { key, tenant, id } = await newTemplate();
    const row = holdRow(id);
    await waitFor(async () => row.locked(), { what: 'the test holding the template row' });
    const header = send(writePart(id, key, 'header', '<span>H2</span>'));
    await waiters(1, 'the header write waiting for the row');
    const footer = send(writePart(id, key, 'footer', '<span>F2</span>'));
    await waiters(2, 'the footer write waiting for the row');
    await row.release();
    const [h, f] = [await header.answer, await footer.answer];
    expect([h.status, h.body.version, f.status, f.body.version]).toEqual([200, 2, 200, 3]);
    const now = (await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body;
    expect(now).toMatchObject({ version: 3, parts: { ...PARTS, header: '<span>H2</span>', footer: '<span>F2</span>' } });
    const versions = await versionsOf(id, key);
    expect(versions.map((v) => [v.version, v.parts.header, v.parts.footer])).toEqual([
      [3, '<span>H2</span>', '<span>F2</span>'], [2, '<span>H2</span>', '<span>F1</span>'], [1, '<span>H1</span>', '<span>F1</span>'],
    ]);
    const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: id, action: 'documents.template.updated' } });
    expect(events.map((e) => [e.before, e.after]).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([[{ version: 1 }, { version: 2 }], [{ version: 2 }, { version: 3 }]]);
  });

  it('a rename (the whole template saved, same parts) racing a part write: the part is written into the renamed version', async () => {
    const { key, id, body } = await newTemplate();
    const row = holdRow(id);
    await waitFor(async () => row.locked(), { what: 'the test holding the template row' });
    const rename = send(app.call('put', `/v1/document-templates/${id}`, key).send({ name: 'Renamed', parts: body.parts }));
    await waiters(1, 'the rename waiting for the row');
    const css = send(writePart(id, key, 'css', 'h1 { color: blue }'));
    await waiters(2, 'the part write waiting for the row');
    await row.release();
    expect([(await rename.answer).status, (await css.answer).status]).toEqual([200, 200]);
    expect((await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body).toMatchObject({ version: 3, name: 'Renamed', parts: { ...PARTS, css: 'h1 { color: blue }' } });
  });

  it('with If-Match, the write that comes second is refused (412 PRECONDITION_FAILED), as before, and writes nothing', async () => {
    const { key, id } = await newTemplate();
    const row = holdRow(id);
    await waitFor(async () => row.locked(), { what: 'the test holding the template row' });
    const first = send(writePart(id, key, 'header', '<span>H2</span>').set('If-Match', '"v1"'));
    await waiters(1, 'the first write waiting for the row');
    const second = send(writePart(id, key, 'footer', '<span>F2</span>').set('If-Match', '"v1"'));
    await waiters(2, 'the second write waiting for the row');
    await row.release();
    const [a, b] = [await first.answer, await second.answer];
    expect([a.status, b.status, b.body.code]).toEqual([200, 412, 'PRECONDITION_FAILED']);
    expect((await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body).toMatchObject({ version: 2, parts: { footer: '<span>F1</span>' } });
  });

  it('a part write the template changed under twice while it was checked: 409 INVALID_STATE, nothing of it written; written again, it saves', async () => {
    const { key, id } = await newTemplate();
    const held = holdRow(id);
    await waitFor(async () => held.locked(), { what: 'the test holding the template row' });
    // In the row's queue: another write, then ours, then the test again (a save that lands while ours checks again).
    const other = send(writePart(id, key, 'footer', '<span>F2</span>'));
    await waiters(1, 'the other write waiting for the row');
    const ours = send(writePart(id, key, 'header', '<span>H2</span>'));
    await waiters(2, 'our write waiting for the row');
    const next = holdRow(id, { afterQueued: true });
    await waiters(3, 'the test waiting for the row');
    await held.release();
    // The other write saved version 2; ours found it, left to check its parts again, and now waits behind the test.
    await waitFor(async () => next.locked(), { what: 'the test holding the row again' });
    expect((await other.answer).status).toBe(200);
    await waiters(1, 'our write waiting for the row again');
    await next.release((t) => app.sequelize.query(
      "UPDATE document_templates SET version = version + 1, parts = jsonb_set(parts, '{css}', '\"p { margin: 0 }\"') WHERE id = $1",
      { bind: [id], transaction: t }));
    const refused = await ours.answer;
    expect([refused.status, refused.body.code]).toEqual([409, 'INVALID_STATE']);
    const now = (await app.call('get', `/v1/document-templates/${id}`, key).expect(200)).body;
    expect(now).toMatchObject({ version: 3, parts: { header: '<span>H1</span>', footer: '<span>F2</span>', css: 'p { margin: 0 }' } });
    expect((await writePart(id, key, 'header', '<span>H2</span>').expect(200)).body).toMatchObject({ version: 4, parts: { header: '<span>H2</span>', footer: '<span>F2</span>', css: 'p { margin: 0 }' } });
  });
});
