import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/webhooks/secret/rotate: a new secret; the old one signs too for 24 h. */
export const handler = route({ scope: 'webhooks:manage', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().webhooks.rotateSecret(req.caller.tenant),
}));
