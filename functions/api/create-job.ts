import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/jobs: accept a shot. 202 with the job; a replayed Idempotency-Key answers with the first job. */
export const handler = route({ scope: 'jobs:write' }, async (req) => {
  const { job, created } = await container().jobs.create(
    req.caller,
    req.body,
    req.headers['idempotency-key'],
  );
  return {
    status: 202,
    body: job,
    headers: { location: `/v1/jobs/${job.id}`, ...(created ? {} : { 'idempotent-replayed': 'true' }) },
  };
});
