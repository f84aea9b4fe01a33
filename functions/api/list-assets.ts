import { AssetListQuery } from '../core/assets.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/assets?status=&limit=&cursor=: the tenant's assets, newest first. */
export const handler = route({ scope: 'assets:read', query: AssetListQuery }, async (req) => ({
  status: 200,
  body: await container().assets.list(req.caller.tenant, req.query),
}));
