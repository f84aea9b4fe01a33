import { fromConfig } from '../config.ts';
import { route } from './http.ts';
import { openApiDocument } from './openapi-document.ts';

const document = fromConfig(['frameLimit', 'assetMaxFileBytes'], openApiDocument);
document();

/** GET /v1/openapi.json: public, so any client generator or validator can read it. */
export const handler = route({}, async () => ({
  status: 200,
  body: document(),
}));
