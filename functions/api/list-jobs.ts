import { JobListQuery } from '../core/schemas.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/jobs?shot=&status=&limit=&cursor=: the tenant's jobs, newest first. */
export const handler = route({ scope: 'jobs:read', query: JobListQuery }, async (req) => ({
  status: 200,
  body: await container().jobs.list(req.caller.tenant, req.query),
}));
