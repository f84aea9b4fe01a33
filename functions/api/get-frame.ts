import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/jobs/{id}/frames/{frame}: the frame with every version, its thumbnail and download URLs. */
export const handler = route({ scope: 'jobs:read' }, async (req) => ({
  status: 200,
  body: await container().versions.frame(req.caller.tenant, req.path.id ?? '', req.path.frame ?? ''),
}));
