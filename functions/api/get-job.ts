import { toJobResponse } from '../core/views.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/jobs/{id}: the job with its progress counts. */
export const handler = route({ scope: 'jobs:read', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: toJobResponse(await container().jobs.get(req.caller.tenant, req.path.id ?? '')),
}));
