import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/webhooks: register an endpoint `{url, events?}`; 201. */
export const handler = route({ scope: 'webhooks:manage', keys: () => container().apiKeys }, async (req) => {
  const endpoint = await container().webhooks.createEndpoint(req.caller.tenant, req.body);
  return { status: 201, body: endpoint, headers: { location: `/v1/webhooks/${endpoint.id}` } };
});
