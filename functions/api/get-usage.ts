import { UsageQuery } from '../core/schemas.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/** GET /v1/usage?from=&to=&groupBy=tenant|shot|model|day: spend by day, tenant, shot or model. */
export const handler = route({ scope: 'jobs:read', query: UsageQuery }, async (req) => ({
  status: 200,
  body: await container().usage.report(req.caller, req.query),
}));
