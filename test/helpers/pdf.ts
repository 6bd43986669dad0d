// Reading what the documents domain produces, for real: PDF text by poppler's pdftotext, ZIP entries by yauzl.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yauzl from 'yauzl';

/** supertest parser that keeps a binary body as a Buffer. */
export function binary(res: unknown, done: (err: Error | null, body: unknown) => void): void {
  const stream = res as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
}

/** The text of each page (pdftotext -layout splits pages with a form feed). */
export function pdfPages(pdf: Buffer): string[] {
  expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'docket-pdf-')), 'doc.pdf');
  fs.writeFileSync(file, pdf);
  try {
    const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
    return text.split('\f').filter((p) => p.trim() !== '');
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

export function unzip(zip: Buffer): Promise<{ name: string; data: Buffer }[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, archive) => {
      if (err || !archive) return reject(err);
      const entries: { name: string; data: Buffer }[] = [];
      archive.on('entry', (entry: yauzl.Entry) => {
        archive.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => { entries.push({ name: entry.fileName, data: Buffer.concat(chunks) }); archive.readEntry(); });
        });
      });
      archive.on('end', () => resolve(entries));
      archive.on('error', reject);
      archive.readEntry();
    });
  });
}
