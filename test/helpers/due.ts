// Creates things that fall due as soon as possible: a due time a moment ahead, pushed further out only
// when the server took too long to see it as future (422 TIME_IN_PAST: nothing was written). Tests then
// wait for what happens, not a fixed few seconds every run sits out and a busy machine may still miss.
import type { Response } from 'supertest';

export async function createDueSoon(create: (at: string) => PromiseLike<Response>, leadsMs = [1000, 3000, 10_000]): Promise<Response> {
  for (const lead of leadsMs) {
    const res = await create(new Date(Date.now() + lead).toISOString());
    if (!(res.status === 422 && res.body.code === 'TIME_IN_PAST')) return res;
  }
  throw new Error(`still TIME_IN_PAST ${leadsMs.at(-1)} ms ahead`);
}
