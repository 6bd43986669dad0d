// The prebuilt workflow bundle: built once (npm run build / test setup), loaded by every Worker.
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from '../lib/paths';

export const DEFAULT_BUNDLE_PATH = process.env.WORKFLOW_BUNDLE_PATH || path.join(PROJECT_ROOT, 'dist', 'workflow-bundle.js');

export async function writeWorkflowBundle(target = DEFAULT_BUNDLE_PATH): Promise<string> {
  const workflowsPath = require.resolve('../workflows');
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    // The worker's one V8 context evaluates these once and shares them, instead of evaluating the SDK's workflow
    // API and every Docket workflow module again for each workflow it loads: less CPU for every workflow that is
    // not in the sticky cache (a sign, a firing, a replay) and less memory for each one that is. Safe because
    // workflows/ keeps no module-level mutable state (constants, activity proxies and pure functions only);
    // the SDK deep-freezes what it shares, so a module that tried to keep some would fail loudly.
    preloadModules: ['@temporalio/workflow', workflowsPath],
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, code);
  return target;
}
