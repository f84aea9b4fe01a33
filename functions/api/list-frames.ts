import { FrameListQuery } from '../core/schemas.ts';
import { parse } from '../core/validation.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/jobs/{id}/frames?cursor=: frames in order, with presigned URLs once stored. */
export const handler = route({ scope: 'jobs:read', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().jobs.frames(
    req.caller.tenant,
    req.path.id ?? '',
    parse(FrameListQuery, req.query, 'query'),
  ),
}));
