import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/**
 * Checks responses against the OpenAPI document the API serves, as an outside client's validator
 * would: the response schema of the operation and status, with the document's components.
 */
export function responseValidator(doc: {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>
  >;
  components: { schemas: Record<string, unknown> };
}) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema({ $id: 'framecast', components: doc.components });
  const rewrite = (schema: unknown): unknown =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"framecast#/components/'));
  return (method: string, path: string, status: number, body: unknown): string[] => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!op) return [`no operation ${method} ${path} in the document`];
    const response = op.responses[String(status)];
    if (!response) return [`status ${status} is not documented for ${method} ${path}`];
    const schema = response.content?.['application/json']?.schema;
    if (!schema)
      return body === undefined || body === '' ? [] : [`${method} ${path} ${status} documents no body`];
    const validate = ajv.compile(rewrite(schema) as object);
    return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  };
}
