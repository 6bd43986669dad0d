// Small HTML pages the API answers where a person, not a client, follows a link from an email (approval and
// unsubscribe links): one look, every value escaped.
import Koa from 'koa';

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));

/** A page with a title and a body (HTML the caller built, its values escaped with `esc`). */
export function htmlPage(ctx: Koa.Context, status: number, title: string, body: string): void {
  ctx.status = status;
  ctx.type = 'text/html';
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>`
    + '<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}textarea{width:100%}</style></head>'
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}
