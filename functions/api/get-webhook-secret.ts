import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/webhooks/secret: `{secret: "whsec_..."}`, made at first use. */
export const handler = route({ scope: 'webhooks:manage', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().webhooks.secret(req.caller.tenant),
}));
