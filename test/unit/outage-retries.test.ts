// Which errors are outages, and what activities do with them: an outage stays retryable at any attempt,
// any other error is final once the activity's budget of attempts is spent.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ConnectionRefusedError, DatabaseError, UniqueConstraintError, ValidationError } from 'sequelize';
import { countedFailure, GAVE_UP, withOutageRetries } from '../../lib/activity-retries';
import { isDatabaseUnavailable, isInfrastructureError, isTemporalUnavailable, TemporalUnavailableError } from '../../lib/dependency-errors';

const netError = (code: string, message = `connect ${code}`) => Object.assign(new Error(message), { code });
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
const grpcError = (code: number) => Object.assign(new Error('Failed to start Workflow'), { name: 'ServiceError', cause: Object.assign(new Error('tcp connect error'), { name: 'ServiceError', code }) });

describe('outages', () => {
  it('knows a database that is down, restarting or asking for a retry', () => {
    expect(isDatabaseUnavailable(new ConnectionRefusedError(netError('ECONNREFUSED')))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseError(netError('ECONNRESET', 'write ECONNRESET') as never))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseError(pgError('57P01', 'terminating connection due to administrator command') as never))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseError(pgError('40001', 'could not serialize access') as never))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseError(new Error('Connection terminated unexpectedly') as never))).toBe(true);
  });

  it('does not take a bad query, a conflict or someone else\'s server for an outage', () => {
    expect(isDatabaseUnavailable(new DatabaseError(pgError('22P02', 'invalid input syntax for type uuid') as never))).toBe(false);
    expect(isDatabaseUnavailable(new UniqueConstraintError({}))).toBe(false);
    expect(isDatabaseUnavailable(new ValidationError('bad', []))).toBe(false);
    // A webhook receiver or SMTP server refusing: the recipient's problem, retried within the delivery's budget.
    expect(isInfrastructureError(netError('ECONNREFUSED'))).toBe(false);
    expect(isInfrastructureError(new Error('HTTP 500 from https://hooks.example.com'))).toBe(false);
  });

  it('knows an unavailable Temporal', () => {
    expect(isTemporalUnavailable(grpcError(14))).toBe(true); // UNAVAILABLE
    expect(isTemporalUnavailable(grpcError(4))).toBe(true); // DEADLINE_EXCEEDED
    expect(isTemporalUnavailable(new TemporalUnavailableError('down'))).toBe(true);
    expect(isTemporalUnavailable(grpcError(3))).toBe(false); // INVALID_ARGUMENT
  });
});

describe('activities under withOutageRetries', () => {
  const acts = withOutageRetries({
    outage: async () => { throw new ConnectionRefusedError(netError('ECONNREFUSED')); },
    broken: async () => { throw new Error('something else'); },
    refused: async () => { throw ApplicationFailure.nonRetryable('no such template', 'TemplateRenderError'); },
    job: async (_i: { attempts: number }) => { throw new Error('HTTP 500'); },
  }, { default: 3, job: (i) => i.attempts });
  const at = (attempt: number) => new MockActivityEnvironment({ attempt });

  it('keeps an outage retryable at any attempt', async () => {
    const err = await at(500).run(acts.outage).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionRefusedError);
  });

  it('retries another error until its budget is spent, then makes it final', async () => {
    expect(await at(2).run(acts.broken).catch((e) => e)).not.toBeInstanceOf(ApplicationFailure);
    const last = await at(3).run(acts.broken).catch((e) => e);
    expect(last).toBeInstanceOf(ApplicationFailure);
    expect(last).toMatchObject({ nonRetryable: true, message: 'something else' });
    expect(await at(1).run(acts.job, { attempts: 1 }).catch((e) => e)).toMatchObject({ nonRetryable: true, message: 'HTTP 500' });
    expect(await at(99).run(acts.job, { attempts: 0 }).catch((e) => e)).not.toBeInstanceOf(ApplicationFailure); // 0: no limit
  });

  it('passes business refusals through as they are', async () => {
    expect(await at(1).run(acts.refused).catch((e) => e)).toMatchObject({ type: 'TemplateRenderError', nonRetryable: true });
  });

  it('lets an activity that counts its own attempts retry past Temporal\'s count, until its own is spent', async () => {
    // A delivery on Temporal's attempt 12 (eleven waits for the send limit) whose SMTP server failed it on its 3rd real
    // attempt of 8: still retryable, with its error's type (a workflow's nonRetryableErrorTypes still apply).
    const counted = withOutageRetries({ deliver: async (attempt: number) => { throw countedFailure(new Error('421 try later'), attempt, 8); } }, { default: 8 });
    expect(await at(12).run(counted.deliver, 3).catch((e) => e)).toMatchObject({ message: '421 try later', type: 'Error', nonRetryable: false });
    expect(await at(12).run(counted.deliver, 8).catch((e) => e)).toMatchObject({ message: '421 try later', type: GAVE_UP, nonRetryable: true });
    const gone = Object.assign(new Error('user left'), { name: 'RecipientGoneError' });
    expect(countedFailure(gone, 1, 8)).toMatchObject({ type: 'RecipientGoneError', nonRetryable: false });
    // An outage and a refusal are what they were.
    const outage = new ConnectionRefusedError(netError('ECONNREFUSED'));
    expect(countedFailure(outage, 99, 8)).toBe(outage);
    const refusal = ApplicationFailure.nonRetryable('no', 'EmailRejectedError');
    expect(countedFailure(refusal, 1, 8)).toBe(refusal);
  });
});
