// Finds bytes that are not UTF-8 while the file streams by, so that the one row holding them can be rejected.
import { isUtf8 } from 'node:buffer';

/** How many bytes at the end of `buf` start a multi-byte character that the next chunk finishes. */
function incompleteTail(buf: Buffer): number {
  for (let back = 1; back <= 3 && back <= buf.length; back++) {
    const b = buf[buf.length - back];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/** Offsets (within `buf`) where an invalid sequence starts. Only called for a chunk isUtf8 refused. */
export function invalidUtf8Offsets(buf: Buffer): number[] {
  const bad: number[] = [];
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    const need = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (need === 0) { bad.push(i); i++; continue; }
    if (need === 1) { i++; continue; }
    const seq = buf.subarray(i, i + need);
    if (seq.length === need && isUtf8(seq)) i += need;
    else { bad.push(i); i++; }
  }
  return bad;
}

export class Utf8Guard {
  private tail: Buffer = Buffer.alloc(0);
  /** Absolute offsets of invalid bytes not yet passed by the rows. */
  private readonly bad: number[] = [];

  /** Looks at the next `chunk`, which starts at absolute offset `at`. */
  check(chunk: Buffer, at: number): void {
    const cut = incompleteTail(chunk);
    const start = at - this.tail.length;
    const body = this.tail.length ? Buffer.concat([this.tail, chunk.subarray(0, chunk.length - cut)]) : chunk.subarray(0, chunk.length - cut);
    if (!isUtf8(body)) for (const off of invalidUtf8Offsets(body)) this.bad.push(start + off);
    this.tail = Buffer.from(chunk.subarray(chunk.length - cut));
  }

  /** At the end of the file: a character left unfinished is invalid. */
  end(at: number): void {
    if (this.tail.length) this.bad.push(at - this.tail.length);
    this.tail = Buffer.alloc(0);
  }

  /** Whether any invalid byte lies in [from, to); forgets those before `to`. */
  spans(from: number, to: number): boolean {
    let hit = false;
    while (this.bad.length && this.bad[0] < to) {
      if (this.bad[0] >= from) hit = true;
      this.bad.shift();
    }
    return hit;
  }
}
