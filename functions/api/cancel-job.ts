import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/jobs/{id}/cancel: stop the job; frames not started are never generated. */
export const handler = route({ scope: 'jobs:write' }, async (req) => ({
  status: 200,
  body: await container().jobs.cancel(req.caller, req.path.id ?? ''),
}));
