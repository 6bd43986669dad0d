import fs from 'node:fs';
import { readXlsx } from './domains/imports/source/xlsx';
const file = process.argv[2]; const from = Number(process.argv[3]);
const t0 = performance.now(); let first = 0; let rows = 0;
readXlsx({ open: (s = 0) => fs.createReadStream(file, { start: s, highWaterMark: 64 * 1024 }) }, { headerRow: 1, maxUncompressedBytes: 2 ** 31, from: { row: from, byte: null } }, {
  header: () => console.log('header at', (performance.now() - t0) / 1000), row: () => { if (!rows++) first = performance.now(); }, unreadable: () => {}, pause: () => {},
}).then(() => console.log('first row after skip at', (first - t0) / 1000, 'end', (performance.now() - t0) / 1000, rows));
