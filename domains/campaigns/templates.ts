// A campaign's subject, HTML and text bodies in the documents' sandboxed Liquid (domains/documents/templates.ts):
// checked on save (syntax errors name the part, line and column), rendered once per recipient with the merge
// fields `subscriber.name`, `subscriber.email`, `subscriber.attributes.*` and `unsubscribe_url`.
import type { Liquid } from 'liquidjs';
import { LRUCache } from 'lru-cache';
import { parsePart, renderParsed, sandboxedLiquid } from '../documents/templates';

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
interface Compiled { escaped: Liquid; plain: Liquid; parts: Record<Part, Parsed> }

// HTML output is escaped; the subject and the text part are not HTML (nodemailer encodes the subject header).
const engines = () => ({ escaped: sandboxedLiquid({ strict: false, escape: true }), plain: sandboxedLiquid({ strict: false, escape: false }) });
const engineFor = (c: Omit<Compiled, 'parts'>, part: Part) => (part === 'html' ? c.escaped : c.plain);

function compile(content: CampaignContent): Compiled {
  const e = engines();
  const parts = {} as Record<Part, Parsed>;
  for (const part of CONTENT_PARTS) parts[part] = parsePart(engineFor(e, part), part, content[part]);
  return { ...e, parts };
}

/** Parses every part; the first syntax error is thrown (TemplateSyntaxError) with its part, line and column. */
export function checkCampaignContent(content: CampaignContent): void {
  compile(content);
}

// Parsed content by (campaign, version): a send renders one version a million times.
const cache = new LRUCache<string, Compiled>({ max: 100 });

/** Renders one recipient's message; `cacheKey` (campaign id + version) reuses the parsed parts. */
export async function renderCampaignMessage(content: CampaignContent, data: MergeData, cacheKey?: string): Promise<CampaignContent> {
  let c = cacheKey ? cache.get(cacheKey) : undefined;
  if (!c) {
    c = compile(content);
    if (cacheKey) cache.set(cacheKey, c);
  }
  const scope = data as unknown as Record<string, unknown>;
  const [subject, html, text] = await Promise.all(CONTENT_PARTS.map((part) => renderParsed(engineFor(c, part), part, c.parts[part], scope)));
  // A header is one line, whatever the merge fields held.
  return { subject: subject.replace(/[\r\n]+/g, ' ').trim(), html, text };
}
