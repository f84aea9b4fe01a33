import { JobListQuery } from '../core/schemas.ts';
import { parse } from '../core/validation.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/jobs?shot=&status=&limit=&cursor=: the tenant's jobs, newest first. */
export const handler = route({ scope: 'jobs:read', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().jobs.list(req.caller.tenant, parse(JobListQuery, req.query, 'query')),
}));
