// The BlobStore contract on the disk store (the S3 store runs the same body under `npm run test:s3`).
import fs from 'node:fs';
import { DiskBlobStore } from '../../lib/blob-store';
import { describeBlobStoreContract, diskContents, tempDir } from '../helpers/blob-store-contract';

describeBlobStoreContract('disk', async () => {
  const root = tempDir('docket-blobs-');
  return { store: new DiskBlobStore(root), contents: diskContents(root), close: async () => fs.rmSync(root, { recursive: true, force: true }) };
});
