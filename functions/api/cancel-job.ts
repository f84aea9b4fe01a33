import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/jobs/{id}/cancel: stop the job; frames not started are never generated. */
export const handler = route({ scope: 'jobs:write', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().jobs.cancel(req.caller.tenant, req.path.id ?? ''),
}));
