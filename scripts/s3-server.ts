// A throwaway SeaweedFS S3 server on loopback (free ports, temp data dir, one identity, one bucket), for the
// S3 file store's tests and the cluster stack. `weed` comes from scripts/tools.ts ensureWeed (built once).
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './stack';
import { ensureWeed } from './tools';

export interface RunningS3 {
  endpoint: string;
  port: number;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** FILE_STORE=s3 and the S3_* settings that point Docket at this server (path-style, as SeaweedFS needs). */
  env: Record<string, string>;
  process: ChildProcess;
  dir: string;
  stop(): Promise<void>;
}

/** `dir` (with `keep`): where its data lives between runs, as the cluster stack keeps it; otherwise a temp dir removed on stop. */
export async function startS3Server(opts: { bucket?: string; dir?: string; keep?: boolean; log?: (m: string) => void } = {}): Promise<RunningS3> {
  const bin = ensureWeed(opts.log);
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'docket-s3-'));
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const accessKeyId = `docket${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('hex');
  const config = path.join(dir, 's3-identities.json');
  fs.writeFileSync(config, JSON.stringify({
    identities: [{ name: 'docket', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'] }],
  }), { mode: 0o600 });
  // Every listener on its own free port (gRPC ports too: their default is http + 10000, which may be taken).
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await Promise.all(Array.from({ length: 8 }, () => freePort()));
  const args = [
    'server', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', `-dir=${path.join(dir, 'data')}`,
    `-master.port=${master}`, `-master.port.grpc=${masterGrpc}`, '-master.volumeSizeLimitMB=64', '-master.telemetry=false',
    `-volume.port=${volume}`, `-volume.port.grpc=${volumeGrpc}`, '-volume.max=32',
    '-filer', `-filer.port=${filer}`, `-filer.port.grpc=${filerGrpc}`,
    '-s3', `-s3.port=${s3}`, `-s3.port.grpc=${s3Grpc}`, '-s3.port.iceberg=0', '-s3.port.lance=0', `-s3.config=${config}`,
  ];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const killOnExit = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });

  const stop = () => new Promise<void>((resolve) => {
    const cleanup = () => { if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true }); resolve(); };
    if (child.exitCode !== null || child.signalCode !== null) return cleanup();
    child.once('exit', cleanup);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });

  const region = 'us-east-1';
  const bucket = opts.bucket ?? 'docket-files';
  const endpoint = `http://127.0.0.1:${s3}`;
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
  try {
    // The S3 gateway answers once master, volume and filer are up; the bucket is made once it does.
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`weed exited (${child.exitCode}): ${stderr}`);
      try {
        await client.send(new ListBucketsCommand({}));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`weed's S3 gateway did not answer on ${endpoint} (${(err as Error).message}): ${stderr}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    // A kept data dir has the bucket from an earlier run.
    if (!(await client.send(new ListBucketsCommand({}))).Buckets?.some((b) => b.Name === bucket)) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.destroy();
  }
  return {
    endpoint, port: s3, region, bucket, accessKeyId, secretAccessKey, process: child, dir, stop,
    env: { FILE_STORE: 's3', S3_ENDPOINT: endpoint, S3_REGION: region, S3_BUCKET: bucket, S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey, S3_FORCE_PATH_STYLE: 'true' },
  };
}
