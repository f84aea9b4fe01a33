import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/jobs/{id}/reject {reason?}: a job awaiting review is canceled, with who and why on record. */
export const handler = route({ scope: 'jobs:write' }, async (req) => ({
  status: 200,
  body: await container().jobs.reject(req.caller, req.path.id ?? '', req.body),
}));
