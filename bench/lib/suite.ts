// What a suite is and what it reports: measured numbers plus targets judged PASS/FAIL.
import type { BenchStack } from './stack';

export interface Target {
  /** What is judged, e.g. "GET /v1/me throughput". */
  name: string;
  actual: number;
  op: '>=' | '<' | '<=' | '==';
  target: number;
  unit: string;
  pass: boolean;
}

export function judge(name: string, actual: number, op: Target['op'], target: number, unit: string): Target {
  const pass = op === '>=' ? actual >= target : op === '<' ? actual < target : op === '<=' ? actual <= target : actual === target;
  return { name, actual, op, target, unit, pass };
}

export interface SuiteResult {
  suite: string;
  startedAt: string;
  finishedAt: string;
  /** The knobs the run used (connections, durations, counts …). */
  config: Record<string, unknown>;
  /** Everything measured, suite-specific shape. */
  measurements: Record<string, unknown>;
  targets: Target[];
  /** Lines for the stdout summary, before the targets table. */
  summary: string;
}

export interface Suite {
  name: string;
  description: string;
  run(stack: BenchStack): Promise<SuiteResult>;
}

/** An integer knob from the environment; `min` 0 for knobs where 0 turns a step off. */
export function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return n;
}
