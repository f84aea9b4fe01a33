import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/jobs/{id}/approve: a job awaiting review makes the rest of its frames. */
export const handler = route({ scope: 'jobs:write' }, async (req) => ({
  status: 200,
  body: await container().jobs.approve(req.caller, req.path.id ?? ''),
}));
