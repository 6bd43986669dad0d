// Stops what global-setup started and removes its folder.
import fs from 'node:fs';
import type { TestStack } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as { __DOCKET_STACK__?: TestStack }).__DOCKET_STACK__;
  if (!stack) return;
  await Promise.all([stack.temporal?.stop(), stack.pg?.stop()]);
  fs.rmSync(stack.dir, { recursive: true, force: true });
}
