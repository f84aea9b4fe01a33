import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/assets/{id}: the asset, with its size once complete. */
export const handler = route({ scope: 'assets:read' }, async (req) => ({
  status: 200,
  body: await container().assets.get(req.caller.tenant, req.path.id ?? ''),
}));
