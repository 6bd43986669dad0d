// A campaign's subject, HTML and text bodies in the documents' sandboxed Liquid (domains/documents/templates.ts):
// checked on save (syntax errors name the part, line and column), rendered once per recipient with the merge
// fields `subscriber.name`, `subscriber.email`, `subscriber.attributes.*` and `unsubscribe_url`.
import type { Liquid } from 'liquidjs';
import { LRUCache } from 'lru-cache';
import { parsePart, renderParsed, sandboxedLiquid, TemplateRenderError } from '../documents/templates';

export interface CampaignContent {
  subject: string;
  html: string;
  text: string;
}

export const CONTENT_PARTS = ['subject', 'html', 'text'] as const;
type Part = (typeof CONTENT_PARTS)[number];

export interface MergeData {
  subscriber: { name: string | null; email: string; attributes: Record<string, unknown> };
  unsubscribe_url: string;
}

type Parsed = ReturnType<Liquid['parse']>;
// A part without Liquid markup is kept as its text: it renders as itself, with no engine call per recipient.
interface Compiled { escaped: Liquid; plain: Liquid; parts: Record<Part, Parsed | string> }

/** Whether a part has any Liquid markup: without `{{` or `{%` liquidjs reads it as one piece of text, output as is. */
export const hasLiquidMarkup = (src: string) => src.includes('{{') || src.includes('{%');

/**
 * A campaign part's render limit, tighter than a document's: three parts stay within the fixed part of a send
 * batch's budget (domains/campaigns/sending.ts), so one recipient whose data makes the template slow fails alone
 * instead of taking the batch — and the campaign — with it. A message renders in well under a millisecond.
 */
export const CAMPAIGN_PART_RENDER_MS = 500;

// HTML output is escaped; the subject and the text part are not HTML (nodemailer encodes the subject header).
const engines = () => ({
  escaped: sandboxedLiquid({ strict: false, escape: true, renderMs: CAMPAIGN_PART_RENDER_MS }),
  plain: sandboxedLiquid({ strict: false, escape: false, renderMs: CAMPAIGN_PART_RENDER_MS }),
});
const engineFor = (c: Omit<Compiled, 'parts'>, part: Part) => (part === 'html' ? c.escaped : c.plain);

function compile(content: CampaignContent): Compiled {
  const e = engines();
  const parts = {} as Record<Part, Parsed | string>;
  for (const part of CONTENT_PARTS) {
    // Parsed either way, so a part without markup meets the same checks and parse limit.
    const parsed = parsePart(engineFor(e, part), part, content[part]);
    parts[part] = hasLiquidMarkup(content[part]) ? parsed : content[part];
  }
  return { ...e, parts };
}

/** Parses every part; the first syntax error is thrown (TemplateSyntaxError) with its part, line and column. */
export function checkCampaignContent(content: CampaignContent): void {
  compile(content);
}

// Parsed content by (campaign, version): a send renders one version a million times.
const cache = new LRUCache<string, Compiled>({ max: 100 });

/**
 * Renders one recipient's message; `cacheKey` (campaign id + version) reuses the parsed parts. Synchronous (see
 * renderParsed): the sending loop renders once per recipient, within the sandbox's render time and memory limits.
 */
export function renderCampaignMessage(content: CampaignContent, data: MergeData, cacheKey?: string): CampaignContent {
  let c = cacheKey ? cache.get(cacheKey) : undefined;
  if (!c) {
    c = compile(content);
    if (cacheKey) cache.set(cacheKey, c);
  }
  const scope = data as unknown as Record<string, unknown>;
  const render = (part: Part) => {
    const parsed = c.parts[part];
    return typeof parsed === 'string' ? parsed : renderParsed(engineFor(c, part), part, parsed, scope);
  };
  const [subject, html, text] = CONTENT_PARTS.map(render);
  // A header is one line, whatever the merge fields held.
  return { subject: subject.replace(/[\r\n]+/g, ' ').trim(), html, text };
}

/**
 * The largest message a campaign sends, in characters over its subject, HTML and text together. A recipient whose
 * message comes out larger fails with the reason (providers refuse mail far smaller than this anyway); without the
 * cap, a batch of such messages would fill the worker's memory before one of them was sent.
 */
export const MAX_MESSAGE_CHARS = 2_000_000;

/** A rendered message's size in characters (or its error's). */
export const charsOf = (m: CampaignContent | { error: string }) => ('error' in m ? m.error.length : m.subject.length + m.html.length + m.text.length);

/**
 * One send batch's messages, run on the work pool (domains/campaigns/sending.ts): each recipient's message, or why
 * it could not be rendered (a filter failing on their data, a per-part limit, a message over MAX_MESSAGE_CHARS) —
 * that recipient fails, not the batch — and how long rendering took on the thread (the batch's budget counts that,
 * not the wait for the thread). Stops once the messages hold `maxChars` (at least one is rendered): what the batch
 * may keep in memory, which the caller sends before rendering the rest.
 */
export function renderCampaignBatch(
  content: CampaignContent, data: MergeData[], cacheKey: string, maxChars = Infinity,
): { messages: (CampaignContent | { error: string })[]; ms: number } {
  const started = performance.now();
  const messages: (CampaignContent | { error: string })[] = [];
  let chars = 0;
  for (const d of data) {
    if (messages.length && chars >= maxChars) break;
    let m: CampaignContent | { error: string };
    try {
      m = renderCampaignMessage(content, d, cacheKey);
    } catch (err) {
      if (!(err instanceof TemplateRenderError)) throw err;
      m = { error: err.message };
    }
    const size = charsOf(m);
    if (!('error' in m) && size > MAX_MESSAGE_CHARS) {
      m = { error: `The message came out ${size} characters long; a campaign message may have at most ${MAX_MESSAGE_CHARS} (subject, HTML and text together)` };
    }
    chars += charsOf(m);
    messages.push(m);
  }
  return { messages, ms: performance.now() - started };
}
