import { container } from '../services/container.ts';
import { route } from './http.ts';

/** DELETE /v1/assets/{id}; 204. Content no other asset holds is deleted from the bucket. */
export const handler = route({ scope: 'assets:write' }, async (req) => {
  await container().assets.delete(req.caller.tenant, req.path.id ?? '');
  return { status: 204, body: undefined };
});
