import { container } from '../services/container.ts';
import { route } from './http.ts';

/**
 * POST /v1/jobs/{id}/frames/{frame}/retry {seed?, params?}: a new version of the frame (of its window, on
 * a model with windows). 202; a replayed Idempotency-Key answers with the first re-roll.
 */
export const handler = route({ scope: 'jobs:write' }, async (req) => {
  const { reroll, created } = await container().versions.reroll(
    req.caller,
    req.path.id ?? '',
    req.path.frame ?? '',
    req.body,
    req.headers['idempotency-key'],
  );
  return {
    status: 202,
    body: reroll,
    headers: {
      location: `/v1/jobs/${reroll.jobId}/frames/${reroll.frame}`,
      ...(created ? {} : { 'idempotent-replayed': 'true' }),
    },
  };
});
