// Cursor pages (api/conventions.ts): a list followed from its first page to its last, and the refusals every list
// gives for a page it did not hand out.
import type { TestApp } from './app';

/**
 * The versions each page of a template's version list holds, following `nextCursor` from the first page (`query`
 * added to every request, e.g. `limit=7`) until it is null.
 */
export async function versionPages(app: TestApp, key: string, url: string, query = ''): Promise<number[][]> {
  const pages: number[][] = [];
  let cursor: string | null = null;
  do {
    const params = [query, cursor ? `cursor=${encodeURIComponent(cursor)}` : ''].filter(Boolean).join('&');
    const body = (await app.call('get', params ? `${url}?${params}` : url, key).expect(200)).body as { items: { version: number }[]; nextCursor: string | null };
    pages.push(body.items.map((v) => v.version));
    cursor = body.nextCursor;
    if (pages.length > 100) throw new Error(`${url} never ends`);
  } while (cursor);
  return pages;
}

/** Newest first: `[n, n-1, …, 1]`. */
export const newestFirst = (n: number) => Array.from({ length: n }, (_, i) => n - i);

/**
 * A cursor the server did not hand out (made up, its payload without the seal) and a limit out of range (`maxLimit`: the
 * list's own largest page, one more is refused too) are each a 400 VALIDATION_FAILED naming the parameter.
 */
export async function expectBadPageParamsRefused(app: TestApp, key: string, url: string, opts: { maxLimit?: number } = {}): Promise<void> {
  const issued = (await app.call('get', `${url}?limit=1`, key).expect(200)).body.nextCursor as string;
  const bad = ['cursor=not-a-cursor', `cursor=${encodeURIComponent(issued.split('.')[0])}`, 'limit=0', 'limit=201', 'limit=x', ...(opts.maxLimit ? [`limit=${opts.maxLimit + 1}`] : [])];
  const answers = [];
  for (const q of bad) {
    const res = await app.call('get', `${url}?${q}`, key);
    answers.push([q, res.status, res.body.code, res.body.errors?.[0]?.path]);
  }
  expect(answers).toEqual(bad.map((q) => [q, 400, 'VALIDATION_FAILED', `/query/${q.split('=')[0]}`]));
}
