// Notification parts in the documents' sandboxed Liquid (domains/documents/templates.ts): checked on save (a syntax
// error names the part, line and column), rendered per recipient with parsed parts cached by template id + version.
// No database here: the API's work pool runs these (previews, checks), the activities call them in-thread.
import type { Liquid } from 'liquidjs';
import { LRUCache } from 'lru-cache';
import type { NotificationChannel, NotificationParts } from '../../db/models/notifications';
import { parsePart, refuseOversized, renderParsed, sandboxedLiquid } from '../documents/templates';

export const CHANNEL_PARTS = { email: ['subject', 'text', 'html'], in_app: ['title', 'body'] } as const satisfies Record<NotificationChannel, readonly (keyof NotificationParts)[]>;

type Parsed = ReturnType<Liquid['parse']>;
interface Compiled { escaped: Liquid; plain: Liquid; parts: Partial<Record<keyof NotificationParts, Parsed>> }

// Only an email's HTML part is HTML (escaped output); subjects, text and in-app texts are plain.
const engineFor = (c: Omit<Compiled, 'parts'>, part: string) => (part === 'html' ? c.escaped : c.plain);

function compile(channel: NotificationChannel, parts: NotificationParts): Compiled {
  const c: Compiled = { escaped: sandboxedLiquid({ strict: false, escape: true }), plain: sandboxedLiquid({ strict: false, escape: false }), parts: {} };
  for (const part of CHANNEL_PARTS[channel]) c.parts[part] = parsePart(engineFor(c, part), part, parts[part] ?? '');
  return c;
}

/** Parses every part of the channel; the first syntax error is thrown (TemplateSyntaxError) with its part, line and column. */
export function checkNotificationParts(channel: NotificationChannel, parts: NotificationParts): void {
  compile(channel, parts);
}

const cache = new LRUCache<string, Compiled>({ max: 500 });

/** Renders the channel's parts with `data`; `cacheKey` (template id + version, or the built-in's name) reuses the parsed parts. */
export async function renderNotificationParts(channel: NotificationChannel, parts: NotificationParts, data: Record<string, unknown>, cacheKey?: string): Promise<NotificationParts> {
  let c = cacheKey ? cache.get(cacheKey) : undefined;
  if (!c) {
    c = compile(channel, parts);
    if (cacheKey) cache.set(cacheKey, c);
  }
  const out: NotificationParts = {};
  for (const part of CHANNEL_PARTS[channel]) out[part] = await renderParsed(engineFor(c, part), part, c.parts[part]!, data);
  // A subject or title is one line, whatever the variables held.
  if (out.subject !== undefined) out.subject = out.subject.replace(/[\r\n]+/g, ' ').trim();
  if (out.title !== undefined) out.title = out.title.replace(/[\r\n]+/g, ' ').trim();
  refuseOversized(out);
  return out;
}
