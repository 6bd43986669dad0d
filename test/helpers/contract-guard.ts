// Jest setup for integration files: a contract violation fails the test it happened in, even when the
// test swallowed the error (a .catch, a probe that tolerated it, a status read without .expect).
import { takeViolations } from './contract';

beforeEach(() => {
  takeViolations();
});

afterEach(() => {
  const seen = takeViolations();
  if (seen.length) throw new Error(`${seen.length} response(s) broke openapi.yaml in this test:\n${seen.map((v) => v.message).join('\n')}`);
});
