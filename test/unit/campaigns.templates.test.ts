// A campaign's per-recipient rendering on its own: merge fields, escaping, parts without markup, and the limits.
import { CAMPAIGN_PART_RENDER_MS, MAX_MESSAGE_CHARS, renderCampaignMessage, type CampaignContent, type MergeData } from '../../domains/campaigns/templates';
import { sandboxedLiquid, TEMPLATE_LIMITS, TemplateRenderError, TemplateSyntaxError } from '../../domains/documents/templates';
import { BATCH_OUTPUT_CHARS, renderBatch } from '../../domains/campaigns/sending';
import { closeWorkPool } from '../../domains/work-pool';

const data = (name: string | null = 'Ada <Lovelace> & "Co"'): MergeData => ({
  subscriber: { name, email: 'ada@example.test', attributes: { plan: 'pro' } },
  unsubscribe_url: 'https://docket.example/v1/unsubscribe/abc',
});
let version = 0;
// A fresh cache key per case: the parsed parts are cached by (campaign, version).
const render = (content: CampaignContent, d = data()) => renderCampaignMessage(content, d, `test:${++version}`);

it('fills the merge fields in every part, escaping only the HTML part, and keeps the subject on one line', () => {
  const msg = render({
    subject: 'News for {{ subscriber.name }}\r\n{{ subscriber.attributes.plan }}',
    html: '<p>{{ subscriber.name }} ({{ subscriber.attributes.plan }})</p><a href="{{ unsubscribe_url }}">x</a>',
    text: 'Hi {{ subscriber.name }}. Unsubscribe: {{ unsubscribe_url }}',
  });
  expect(msg).toEqual({
    subject: 'News for Ada <Lovelace> & "Co" pro',
    html: '<p>Ada &lt;Lovelace&gt; &amp; &#34;Co&#34; (pro)</p><a href="https://docket.example/v1/unsubscribe/abc">x</a>',
    text: 'Hi Ada <Lovelace> & "Co". Unsubscribe: https://docket.example/v1/unsubscribe/abc',
  });
  // The same parsed version renders each recipient's own fields.
  const key = `test:${++version}`;
  const content = { subject: 'Hi {{ subscriber.name }}', html: '<p>{{ subscriber.email }}</p>', text: '' };
  expect(renderCampaignMessage(content, data('Ann'), key).subject).toBe('Hi Ann');
  expect(renderCampaignMessage(content, { ...data('Bob'), subscriber: { name: 'Bob', email: 'bob@example.test', attributes: {} } }, key)).toEqual({ subject: 'Hi Bob', html: '<p>bob@example.test</p>', text: '' });
});

it('renders a part without Liquid markup as itself, exactly as the engine would', () => {
  const plain = ['Weekly news ', '<p>50% off { not a tag } %} }} & <b>"now"</b></p>\n', 'Line one\r\nline two\n\n  ', ''];
  for (const src of plain) {
    const msg = render({ subject: 'S', html: src || 'x', text: src });
    expect(msg.text).toBe(src);
    expect(msg.text).toBe(sandboxedLiquid({ strict: false, escape: false }).parseAndRenderSync(src, data()));
    expect(msg.html).toBe(sandboxedLiquid({ strict: false, escape: true }).parseAndRenderSync(src || 'x', data()));
  }
  // A subject without markup is still made one line.
  expect(render({ subject: '  Weekly\r\nnews ', html: 'x', text: '' }).subject).toBe('Weekly news');
});

it('still refuses a part over the parse limit, with markup or without', () => {
  const big = 'x'.repeat(TEMPLATE_LIMITS.parseBytes + 1);
  expect(() => render({ subject: 'S', html: big, text: '' })).toThrow(TemplateSyntaxError);
  expect(() => render({ subject: 'S', html: 'x', text: `${big}{{ unsubscribe_url }}` })).toThrow(TemplateSyntaxError);
});

it('stops a runaway template at the sandbox limits instead of holding the worker: memory, then render time', () => {
  expect(() => render({ subject: 'S', html: '{% for i in (1..100000000) %}{{ i }}{% endfor %}', text: '' })).toThrow(/html: memory alloc limit exceeded/);
  const started = Date.now();
  let err: unknown;
  try {
    render({ subject: 'S', html: 'x', text: '{% for a in (1..5000) %}{% for b in (1..5000) %}{% endfor %}{% endfor %}' });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TemplateRenderError);
  expect((err as Error).message).toMatch(/^text: template render limit exceeded/);
  // A campaign part's own limit, well under a document's.
  expect(Date.now() - started).toBeLessThan(CAMPAIGN_PART_RENDER_MS + 1_000);
  expect(CAMPAIGN_PART_RENDER_MS * 3).toBeLessThan(TEMPLATE_LIMITS.budgetMs);
});

describe('a send batch on the campaigns\' pool', () => {
  afterAll(() => closeWorkPool());

  it('renders a batch of large messages a few at a time: the first ones, in order, up to what a batch may hold in memory', async () => {
    // Each message its own ~170,000 characters, not Latin-1 (two bytes each): ~170 MB for 500 of them, which the
    // worker would hold until sent (and a pool thread, 128 MB, could not even build).
    const campaign = { id: 'big', version: 1, subject: 'Hi {{ subscriber.name }}', html: '{% for i in (1..8000) %}Grüße {{ subscriber.name }}! {% endfor %}', text: '' };
    const batch = Array.from({ length: 500 }, (_, i) => data(`Reader ${i}`));
    // A budget no machine meets too slowly: this is about memory, not time.
    const rendered = await renderBatch(campaign, batch, 120_000);
    const chars = rendered.map((m) => ('error' in m ? m.error.length : m.subject.length + m.html.length + m.text.length));
    const total = chars.reduce((a, b) => a + b, 0);
    expect(rendered.length).toBeLessThan(500);
    expect(total).toBeGreaterThanOrEqual(BATCH_OUTPUT_CHARS);
    expect(total - chars[chars.length - 1]).toBeLessThan(BATCH_OUTPUT_CHARS);
    const first = batch.slice(0, rendered.length);
    expect(rendered.map((m) => ('error' in m ? m.error : m.subject))).toEqual(first.map((d) => `Hi ${d.subscriber.name}`));
    expect(rendered.map((m) => ('html' in m ? m.html.length : 0))).toEqual(first.map((d) => 8_000 * `Grüße ${d.subscriber.name}! `.length));
  }, 180_000);

  it('hands the campaigns\' one thread to another waiting batch between tasks, instead of holding it for a whole batch', async () => {
    const heavy = { id: 'heavy', version: 1, subject: 'Hi {{ subscriber.name }}', html: '{% for i in (1..2000) %}{{ i }}{% endfor %}', text: '' };
    const light = { id: 'light', version: 1, subject: 'Hi {{ subscriber.name }}', html: '<p>hi</p>', text: '' };
    const finished: string[] = [];
    const first = renderBatch(heavy, Array.from({ length: 400 }, (_, i) => data(`Reader ${i}`)), 120_000).then((m) => { finished.push('heavy'); return m; });
    // Asked for while the heavy batch holds the thread: served after its first task, not after its 400 messages.
    const second = renderBatch(light, [data('Ann')], 120_000).then((m) => { finished.push('light'); return m; });
    expect((await second)[0]).toMatchObject({ subject: 'Hi Ann' });
    expect(await first).toHaveLength(400);
    expect(finished).toEqual(['light', 'heavy']);
  }, 120_000);

  it('fails a recipient whose message comes out over MAX_MESSAGE_CHARS, and only them', async () => {
    const campaign = { id: 'blob', version: 1, subject: 'Hi', html: '<p>{{ subscriber.attributes.blob }}{{ subscriber.attributes.blob }}</p>', text: '' };
    const batch = [data('a'), data('b'), data('c')];
    batch[1] = { ...batch[1], subscriber: { ...batch[1].subscriber, attributes: { blob: 'x'.repeat(MAX_MESSAGE_CHARS / 2 + 1) } } };
    const rendered = await renderBatch(campaign, batch, 120_000);
    expect(rendered).toHaveLength(3);
    expect(rendered[0]).toEqual({ subject: 'Hi', html: '<p></p>', text: '' });
    expect(rendered[1]).toEqual({ error: expect.stringMatching(/^The message came out 2000011 characters long; a campaign message may have at most 2000000/) });
    expect(rendered[2]).toEqual({ subject: 'Hi', html: '<p></p>', text: '' });
  }, 60_000);
});
