// The BlobStore contract on the disk store (the S3 store runs the same body under `npm run test:s3`).
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DiskBlobStore } from '../../lib/blob-store';
import { describeBlobStoreContract, diskContents, tempDir } from '../helpers/blob-store-contract';

describeBlobStoreContract('disk', async () => {
  const root = tempDir('docket-blobs-');
  return { store: new DiskBlobStore(root), contents: diskContents(root), close: async () => fs.rmSync(root, { recursive: true, force: true }) };
});

// Whether an upload's bytes were stored already (by another tenant, perhaps) must not show in how long it takes: the
// disk store does the same rename either way.
it('the disk store publishes bytes it holds already as it publishes new ones: the staged copy replaces the stored one', async () => {
  const root = tempDir('docket-blobs-');
  try {
    const store = new DiskBlobStore(root);
    const bytes = Buffer.from('content another tenant uploaded first');
    const first = await store.stage(Readable.from([bytes]));
    await store.publish(first);
    const stored = path.join(root, first.sha256.slice(0, 2), first.sha256);
    const before = fs.statSync(stored).ino;
    const again = await store.stage(Readable.from([bytes]));
    const stagedIno = fs.statSync(again.location).ino;
    await store.publish(again);
    expect([fs.statSync(stored).ino, fs.existsSync(again.location)]).toEqual([stagedIno, false]);
    expect(stagedIno).not.toBe(before);
    expect(fs.readFileSync(stored).equals(bytes)).toBe(true);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
