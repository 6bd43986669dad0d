// A workbook's shared strings on disk, off the JS heap: UTF-8 text plus an index of offsets, read back through a small block cache.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImportError } from '../errors';

export interface SharedStringsCache {
  /** Bytes per cached block of each file (default 64 KiB). */
  blockBytes?: number;
  /** Blocks kept per file, least recently used dropped first (default 32: 2 MiB of text, 2 MiB of offsets). */
  blocks?: number;
}

const WRITE_BUFFER = 1024 * 1024;

/** One of the store's two files: appended to in big writes, then read by position through an LRU of blocks. */
class BlockFile {
  private readonly pending = Buffer.allocUnsafe(WRITE_BUFFER);
  private used = 0;
  /** Bytes on disk (excluding `pending`). */
  size = 0;
  private readonly blocks = new Map<number, Buffer>();
  private last = -1;
  private lastBlock: Buffer | undefined;
  misses = 0;

  constructor(readonly fd: number, private readonly blockBytes: number, private readonly maxBlocks: number, private readonly onWriteError: (err: NodeJS.ErrnoException) => never) {}

  get length(): number { return this.size + this.used; }

  append(bytes: Buffer | string, encoding?: 'utf8'): void {
    const n = typeof bytes === 'string' ? Buffer.byteLength(bytes, encoding) : bytes.length;
    if (this.used + n > WRITE_BUFFER) this.flush();
    if (n > WRITE_BUFFER) {
      this.write(typeof bytes === 'string' ? Buffer.from(bytes, encoding) : bytes);
      return;
    }
    if (typeof bytes === 'string') this.pending.write(bytes, this.used, encoding);
    else bytes.copy(this.pending, this.used);
    this.used += n;
  }

  appendDouble(value: number): void {
    if (this.used + 8 > WRITE_BUFFER) this.flush();
    this.pending.writeDoubleLE(value, this.used);
    this.used += 8;
  }

  flush(): void {
    if (this.used === 0) return;
    this.write(this.pending.subarray(0, this.used));
    this.used = 0;
  }

  private write(buf: Buffer): void {
    try {
      let done = 0;
      while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done, this.size + done);
    } catch (err) {
      this.onWriteError(err as NodeJS.ErrnoException);
    }
    this.size += buf.length;
  }

  private block(no: number): Buffer {
    if (no === this.last) return this.lastBlock!;
    let b = this.blocks.get(no);
    if (b) {
      this.blocks.delete(no);
    } else {
      this.misses++;
      const start = no * this.blockBytes;
      const len = Math.min(this.blockBytes, this.size - start);
      b = Buffer.allocUnsafe(len);
      fs.readSync(this.fd, b, 0, len, start);
      if (this.blocks.size >= this.maxBlocks) this.blocks.delete(this.blocks.keys().next().value!);
    }
    this.blocks.set(no, b);
    this.last = no;
    this.lastBlock = b;
    return b;
  }

  /** The bytes [start, end) as UTF-8 text: from one cached block, or read on their own when they span blocks. */
  text(start: number, end: number): string {
    const no = Math.floor(start / this.blockBytes);
    const base = no * this.blockBytes;
    if (end - base <= this.blockBytes) return this.block(no).toString('utf8', start - base, end - base);
    this.misses++;
    const b = Buffer.allocUnsafe(end - start);
    fs.readSync(this.fd, b, 0, b.length, start);
    return b.toString('utf8');
  }

  double(at: number): number {
    const no = Math.floor(at / this.blockBytes);
    return this.block(no).readDoubleLE(at - no * this.blockBytes);
  }
}

/**
 * Write every string in index order (`add`), then `seal` and read them by index (`get`). The files are unlinked
 * as soon as they are open, so no exit path — an error, a cancel, a killed process — leaves them on disk; `close`
 * gives their space back. Lookups are synchronous: cells ask in the middle of exceljs' parse, and in files written
 * by Excel or exceljs strings are numbered in first-use order, so a row's strings sit in a few hot blocks.
 */
export class SharedStringStore {
  private readonly strings: BlockFile;
  private readonly offsets: BlockFile;
  private count = 0;
  private sealed = false;

  private constructor(stringsFd: number, offsetsFd: number, cache: SharedStringsCache) {
    const blockBytes = Math.max(64, Math.floor((cache.blockBytes ?? 64 * 1024) / 8) * 8);
    const blocks = Math.max(1, cache.blocks ?? 32);
    const full = (err: NodeJS.ErrnoException): never => {
      if (err.code === 'ENOSPC' || err.code === 'EFBIG' || err.code === 'EDQUOT') {
        throw new ImportError('FILE_TOO_LARGE', `The import worker's temporary disk (${os.tmpdir()}) has no room for this workbook's text `
          + `(${Math.round(this.strings.length / 1e6)} MB so far); free space there, point TMPDIR at a larger disk, or save the sheet as CSV, which imports at any size`,
        { sharedStringsBytes: this.strings.length });
      }
      throw err;
    };
    this.strings = new BlockFile(stringsFd, blockBytes, blocks, full);
    this.offsets = new BlockFile(offsetsFd, blockBytes, blocks, full);
  }

  /** Opens the store's two files in a fresh directory under `dir` (default: the OS temp dir) and unlinks them at once. */
  static open(cache: SharedStringsCache = {}, dir = os.tmpdir()): SharedStringStore {
    const home = fs.mkdtempSync(path.join(dir, 'docket-xlsx-'));
    const fds: number[] = [];
    try {
      for (const name of ['strings', 'offsets']) fds.push(fs.openSync(path.join(home, name), 'w+', 0o600));
      return new SharedStringStore(fds[0], fds[1], cache);
    } catch (err) {
      for (const fd of fds) fs.closeSync(fd);
      throw err;
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  }

  get size(): number { return this.count; }

  /** Misses of the block cache so far (reads from the files), for tests and measurement. */
  get misses(): number { return this.strings.misses + this.offsets.misses; }

  add(text: string): void {
    this.offsets.appendDouble(this.strings.length);
    this.strings.append(text, 'utf8');
    this.count++;
  }

  seal(): void {
    this.offsets.appendDouble(this.strings.length);
    this.strings.flush();
    this.offsets.flush();
    this.sealed = true;
  }

  /** The string at `index`; '' for an index the part does not have (a damaged file), as an empty cell. */
  get(index: number): string {
    if (!this.sealed) throw new Error('shared strings read before they were all written');
    if (!(index >= 0 && index < this.count)) return '';
    const start = this.offsets.double(index * 8);
    const end = this.offsets.double(index * 8 + 8);
    return end > start ? this.strings.text(start, end) : '';
  }

  close(): void {
    for (const f of [this.strings, this.offsets]) {
      try {
        fs.closeSync(f.fd);
      } catch {
        // closed already
      }
    }
  }
}
