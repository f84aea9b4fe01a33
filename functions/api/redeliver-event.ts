import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/events/{id}/redeliver: send the event again; 202. */
export const handler = route({ scope: 'webhooks:manage', keys: () => container().apiKeys }, async (req) => ({
  status: 202,
  body: await container().webhooks.redeliver(req.caller.tenant, req.path.id ?? ''),
}));
