import { container } from '../services/container.ts';
import { route } from './http.ts';

/** DELETE /v1/webhooks/{id}; 204. */
export const handler = route({ scope: 'webhooks:manage', keys: () => container().apiKeys }, async (req) => {
  await container().webhooks.deleteEndpoint(req.caller.tenant, req.path.id ?? '');
  return { status: 204, body: undefined };
});
