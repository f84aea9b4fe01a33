import { CreateJobQuery } from '../core/schemas.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/**
 * POST /v1/jobs: accept a shot. 202 with the job; a replayed Idempotency-Key answers with the first job.
 * With `?dryRun=true`: 200 with the estimate, after the same checks; nothing is written.
 */
export const handler = route({ scope: 'jobs:write', query: CreateJobQuery }, async (req) => {
  if (req.query.dryRun) {
    return { status: 200, body: await container().jobs.dryRun(req.caller, req.body) };
  }
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
