import { EventListQuery } from '../core/schemas.ts';
import { parse } from '../core/validation.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/jobs/{id}/events: the job's events with their delivery attempts. */
export const handler = route({ scope: 'jobs:read', keys: () => container().apiKeys }, async (req) => ({
  status: 200,
  body: await container().webhooks.listJobEvents(
    req.caller.tenant,
    req.path.id ?? '',
    parse(EventListQuery, req.query, 'query'),
  ),
}));
