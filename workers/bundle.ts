// The prebuilt workflow bundle: built once (npm run build / test setup), loaded by every Worker.
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from '../lib/paths';

export const DEFAULT_BUNDLE_PATH = process.env.WORKFLOW_BUNDLE_PATH || path.join(PROJECT_ROOT, 'dist', 'workflow-bundle.js');

export async function writeWorkflowBundle(target = DEFAULT_BUNDLE_PATH): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, code);
  return target;
}
