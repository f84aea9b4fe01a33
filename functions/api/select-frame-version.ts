import { container } from '../services/container.ts';
import { route } from './http.ts';

/** POST /v1/jobs/{id}/frames/{frame}/select {version}: the sequence name holds that version from now on. */
export const handler = route({ scope: 'jobs:write' }, async (req) => ({
  status: 200,
  body: await container().versions.select(req.caller, req.path.id ?? '', req.path.frame ?? '', req.body),
}));
