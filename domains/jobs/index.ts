// Scheduled jobs: job types run on Temporal Schedules, with their run history.
import { createJobActivities, JOB_BOOKKEEPING_ATTEMPTS } from '../../activities/jobs';
import { jobRoutes } from '../../api/routes/jobs';
import { initJobModels } from '../../db/models/jobs';
import { JOBS_TASK_QUEUE } from '../../workflows/jobs.api';
import { defineDomain } from '../module';

export const jobs = defineDomain({
  name: 'jobs',
  models: initJobModels,
  queues: { jobs: JOBS_TASK_QUEUE },
  activities: createJobActivities,
  attempts: {
    jobRunStarted: JOB_BOOKKEEPING_ATTEMPTS, jobRunFinished: JOB_BOOKKEEPING_ATTEMPTS,
    // The schedule's own maximumAttempts (0 = no limit) decides for the job itself.
    runJob: (i: { attempts?: number }) => i.attempts ?? 0,
  },
  routes: jobRoutes,
});
