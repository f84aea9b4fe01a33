import * as z from 'zod';
import { invalid } from '../core/errors.ts';
import { FrameNumber } from '../core/schemas.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

const FramePath = z
  .string()
  .regex(/^\d{1,7}$/)
  .transform(Number)
  .pipe(FrameNumber);

/** GET /v1/assets/{id}/frames/{frame}: the file of one frame of a ready asset, with a download URL. */
export const handler = route({ scope: 'assets:read' }, async (req) => {
  const frame = FramePath.safeParse(req.path.frame);
  if (!frame.success) throw invalid('frame', 'must be a frame number');
  return {
    status: 200,
    body: await container().assets.frame(req.caller.tenant, req.path.id ?? '', frame.data),
  };
});
