import { container } from '../services/container.ts';
import { route } from './http.ts';

/** PUT /v1/budgets/{tenant}: a tenant's monthly budget and thresholds, for a key with the admin scope. */
export const handler = route({ scope: 'admin' }, async (req) => ({
  status: 200,
  body: await container().budgets.put(req.caller, req.path.tenant ?? '', req.body),
}));
