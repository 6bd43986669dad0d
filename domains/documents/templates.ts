// The sandboxed template language (Liquid, via liquidjs): parts are parsed on save (syntax errors
// carry part, line and column) and rendered to one HTML page plus the PDF header and footer.
//
// Sandbox rules: no file system (partials come only from the template's own `partials` map, so
// `{% include "/etc/passwd" %}` finds nothing), only own properties of the data are visible (no
// `constructor`, `__proto__` or prototype methods), and parse/render time and memory are capped.
// Every `{{ output }}` is HTML-escaped; `| raw` opts out for trusted markup.
import { FilterImplOptions, Liquid, LiquidError } from 'liquidjs';
import { LRUCache } from 'lru-cache';
import type { TemplateParts, TemplateSettings } from '../../db/models/documents';

export const PART_NAMES = ['base', 'header', 'footer', 'css'] as const;
export type PartName = (typeof PART_NAMES)[number];

/**
 * A partial's name. The names of Object.prototype's members (`toString`, `__proto__`, `constructor` …)
 * are refused: partials live in a plain JSON object, where such a name would read or replace something
 * other than a partial. openapi.yaml's `part` path parameter carries the same pattern.
 */
export const PARTIAL_NAME = /^(?!(?:__proto__|__defineGetter__|__defineSetter__|__lookupGetter__|__lookupSetter__|constructor|hasOwnProperty|isPrototypeOf|propertyIsEnumerable|toLocaleString|toString|valueOf)$)[A-Za-z0-9_-]{1,64}$/;

/**
 * openapi.yaml's caps on DocumentTemplateParts, in characters as JSON Schema counts them: each fixed part, each
 * partial, and how many partials. A JSON body is checked against the contract by the API; a part written on its own
 * (a text/plain body, which the contract's validator does not check) is held to the same caps by the command
 * (commands.ts, partLimitErrors). test/integration/documents.test.ts checks they are the contract's.
 */
export const PART_LIMITS = { base: 500_000, header: 50_000, footer: 50_000, css: 200_000, partial: 200_000, partials: 50 } as const;

/**
 * The most characters a template's parts may hold together (base, header, footer, css and every partial's text),
 * counted as PART_LIMITS counts them. The caps above still add up to ~10.8 million (50 partials of 200,000), which a
 * template built one part at a time could reach, while a whole template sent as JSON cannot pass the 1 MB body limit
 * (JSON_BODY_LIMIT_BYTES): this holds both ways of saving to what a JSON body can carry. Each save copies the whole
 * template into a new version, and every render parses it. JSON Schema cannot say it, so openapi.yaml says it in
 * words (the template POST/PUT and the part PUT); commands.ts's partLimitErrors checks it on both paths.
 */
export const PARTS_TOTAL_LIMIT = 1_000_000;

/**
 * Caps that keep one template from starving the worker (liquidjs counts them per render). The API renders
 * previews on its work pool (lib/work-pool.ts), where `budgetMs` is a hard stop: liquidjs checks its own
 * limits between steps, the pool stops a thread whatever it is doing.
 */
export const TEMPLATE_LIMITS = { renderMs: 2_000, parseBytes: 1_000_000, memory: 20_000_000, budgetMs: 3_000, outputChars: 10_000_000 };

/**
 * Refuses a render whose parts together come out over TEMPLATE_LIMITS.outputChars (liquidjs's memory limit counts
 * filters and ranges, not the output): the result travels from the pool thread into the worker's memory, up to
 * two at a time in a document batch, and a worker's heap is capped (256 MB in the compose file).
 */
export function refuseOversized(parts: Record<string, string | undefined>): void {
  const chars = Object.values(parts).reduce((n, v) => n + (v?.length ?? 0), 0);
  if (chars > TEMPLATE_LIMITS.outputChars) {
    throw new TemplateRenderError('output', `the rendered template is ${chars} characters long, over the limit of ${TEMPLATE_LIMITS.outputChars}`);
  }
}

export class TemplateSyntaxError extends Error {
  constructor(readonly part: string, readonly line: number, readonly column: number, message: string) {
    super(`${part} line ${line}, column ${column}: ${message}`);
  }
}

/** Rendering failed: a strict template met a missing variable, or a limit was hit. Not retryable. */
export class TemplateRenderError extends Error {
  constructor(readonly part: string, message: string) {
    super(`${part}: ${message}`);
  }
}

export interface RenderedHtml {
  /** The whole page: CSS in a <style>, the body from `base`. */
  html: string;
  header: string;
  footer: string;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };

/**
 * `newline_to_br` that works under auto-escaping: liquidjs's own inserts `<br />` and then the output is
 * escaped, so the page showed a literal "<br />". This one escapes the text itself and marks its result
 * raw, so the breaks are real and the text is still escaped. (Put it last in a chain: a filter after it
 * is escaped again.)
 */
const newlineToBr: FilterImplOptions = {
  raw: true,
  handler(value: unknown): string {
    const text = value === null || value === undefined ? '' : String(value);
    this.context.memoryLimit.use(text.length);
    return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]).replace(/\r?\n/g, '<br />\n');
  },
};

/**
 * A sandboxed engine: `partials` the only templates include/render can name, `escape` whether `{{ }}` output is
 * HTML-escaped (HTML yes; a mail's subject and text part no), `strict` whether a missing variable fails.
 * Shared by every domain that renders user templates (documents, campaigns); `renderMs` a tighter render limit.
 */
export function sandboxedLiquid(opts: { partials?: Record<string, string>; strict: boolean; escape: boolean; renderMs?: number }): Liquid {
  const liquid = new Liquid({
    // In-memory lookup only: includes/renders resolve against the template's partials, never the disk.
    templates: Object.assign(Object.create(null) as Record<string, string>, opts.partials ?? {}),
    relativeReference: false,
    strictVariables: opts.strict,
    strictFilters: true,
    ownPropertyOnly: true,
    ...(opts.escape ? { outputEscape: 'escape' as const } : {}),
    parseLimit: TEMPLATE_LIMITS.parseBytes,
    renderLimit: opts.renderMs ?? TEMPLATE_LIMITS.renderMs,
    memoryLimit: TEMPLATE_LIMITS.memory,
  });
  liquid.registerFilter('newline_to_br', newlineToBr);
  return liquid;
}

const engine = (parts: TemplateParts, strict: boolean): Liquid => sandboxedLiquid({ partials: parts.partials, strict, escape: true });

const cleanMessage = (err: Error) => err.message.replace(/, line:\d+, col:\d+$/, '').split('\n')[0].slice(0, 300);

/** Parses one part; a syntax error is thrown as TemplateSyntaxError naming the part, line and column. */
export function parsePart(liquid: Liquid, name: string, src: string): ReturnType<Liquid['parse']> {
  try {
    return liquid.parse(src);
  } catch (err) {
    const pos = (err as LiquidError & { token?: { getPosition?: () => [number, number] } }).token?.getPosition?.() ?? [1, 1];
    throw new TemplateSyntaxError(name, pos[0], pos[1], cleanMessage(err as Error));
  }
}

/**
 * Renders a parsed part; a failure (strict variable, a limit) is a TemplateRenderError naming the part. Synchronous:
 * the sandbox has no async filter or tag and the data are plain values, so liquidjs's async path would only add a
 * promise per step (a campaign renders three parts per recipient), and it never yielded to the event loop either.
 * The limits hold the same: liquidjs checks renderLimit between steps and memoryLimit as it allocates, in both paths.
 */
export function renderParsed(liquid: Liquid, part: string, parsed: ReturnType<Liquid['parse']>, data: Record<string, unknown>): string {
  try {
    return liquid.renderSync(parsed, data) as string;
  } catch (err) {
    throw new TemplateRenderError(part, cleanMessage(err as Error));
  }
}

/** Parses every part and partial; the first syntax error is thrown with where it is. */
export function checkTemplate(parts: TemplateParts): void {
  const liquid = engine(parts, false);
  const all: [string, string][] = [
    ...PART_NAMES.filter((p) => p !== 'css').map((p) => [p, parts[p]] as [string, string]),
    ...Object.entries(parts.partials).map(([name, src]) => [`partials.${name}`, src] as [string, string]),
  ];
  for (const [name, src] of all) parsePart(liquid, name, src);
}

interface Compiled {
  liquid: Liquid;
  base: ReturnType<Liquid['parse']>;
  header: ReturnType<Liquid['parse']>;
  footer: ReturnType<Liquid['parse']>;
}

// Parsed templates by (template id, version): a batch renders one version thousands of times.
const cache = new LRUCache<string, Compiled>({ max: 200 });

function compiled(key: string | undefined, parts: TemplateParts, strict: boolean): Compiled {
  const hit = key ? cache.get(`${key}:${strict}`) : undefined;
  if (hit) return hit;
  checkTemplate(parts);
  const liquid = engine(parts, strict);
  const c = { liquid, base: liquid.parse(parts.base), header: liquid.parse(parts.header), footer: liquid.parse(parts.footer) };
  if (key) cache.set(`${key}:${strict}`, c);
  return c;
}

const renderPart = (c: Compiled, part: 'base' | 'header' | 'footer', data: Record<string, unknown>): string => renderParsed(c.liquid, part, c[part], data);

/**
 * Renders the parts with `data`. `cacheKey` (template id + version) reuses the parsed template; the
 * data are the only variables in scope (no globals, no environment).
 */
export async function renderTemplate(parts: TemplateParts, settings: TemplateSettings, data: Record<string, unknown>, cacheKey?: string): Promise<RenderedHtml> {
  const c = compiled(cacheKey, parts, settings.variables === 'strict');
  const [body, header, footer] = [renderPart(c, 'base', data), renderPart(c, 'header', data), renderPart(c, 'footer', data)];
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>${parts.css.replace(/<\/style/gi, '<\\/style')}</style></head><body>${body}</body></html>`;
  refuseOversized({ html, header, footer });
  return { html, header, footer };
}
