import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/assets/{id}/complete: check every file and make the asset ready, or a 409 naming what is missing. */
export const handler = route({ scope: 'assets:write' }, async (req) => ({
  status: 200,
  body: await container().assets.complete(req.caller.tenant, req.path.id ?? ''),
}));
