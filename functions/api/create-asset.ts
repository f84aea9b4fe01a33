import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/assets: announce a still or a sequence by content; 201 with upload URLs for content not held. */
export const handler = route({ scope: 'assets:write' }, async (req) => {
  const asset = await container().assets.create(req.caller.tenant, req.body);
  return { status: 201, body: asset, headers: { location: `/v1/assets/${asset.id}` } };
});
