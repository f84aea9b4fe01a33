/**
 * CORS for the HTTP API (docs/architecture.md, "Versions and review"): the review page may be served from
 * another origin than the API. One statement of the policy, used by the CDK stack (API Gateway answers
 * preflights and adds the headers) and by local mode's gateway, which does the same.
 *
 * The API authenticates with Bearer keys, never cookies, so no credentials are allowed: an allowed origin
 * can do nothing that a page without the key could use.
 */
export const CORS = {
  allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
  allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
  // next-cursor: the next page of a CSV audit export (GET /v1/audit), which has no JSON body to carry it.
  exposeHeaders: ['idempotent-replayed', 'location', 'retry-after', 'next-cursor'],
  maxAgeSeconds: 3600,
} as const;

/** An origin as browsers send it (`https://review.studio.example`, `http://127.0.0.1:5173`), or `*`. */
export const ORIGIN = /^(\*|https?:\/\/[a-z0-9.-]+(:\d{1,5})?)$/;

/** The Access-Control-Allow-Origin answer to `origin`, or undefined when it is not allowed. */
export function allowedOrigin(allowed: readonly string[], origin: string | undefined): string | undefined {
  if (!origin) return undefined;
  if (allowed.includes('*')) return '*';
  return allowed.includes(origin.toLowerCase()) ? origin : undefined;
}

/** The response headers for a request from `origin` (none when it is not allowed). */
export function corsHeaders(
  allowed: readonly string[],
  origin: string | undefined,
  preflight = false,
): Record<string, string> {
  const allow = allowedOrigin(allowed, origin);
  if (!allow) return {};
  return {
    'access-control-allow-origin': allow,
    ...(allow !== '*' && { vary: 'origin' }),
    ...(preflight
      ? {
          'access-control-allow-methods': CORS.allowMethods.join(', '),
          'access-control-allow-headers': CORS.allowHeaders.join(', '),
          'access-control-max-age': String(CORS.maxAgeSeconds),
        }
      : { 'access-control-expose-headers': CORS.exposeHeaders.join(', ') }),
  };
}
