import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/assets/{id}/files: the next page of a sequence's files, or files again for fresh URLs. */
export const handler = route({ scope: 'assets:write' }, async (req) => ({
  status: 200,
  body: await container().assets.addFiles(req.caller.tenant, req.path.id ?? '', req.body),
}));
