import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/webhooks */
export const handler = route({ scope: 'webhooks:manage', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().webhooks.listEndpoints(req.caller.tenant),
}));
