import { AuditQuery } from '../core/schemas.ts';
import { container } from '../services/container.ts';
import { route } from './http.ts';

/**
 * GET /v1/audit?from=&to=&tenant=&format=&limit=&cursor=: the tenant's generation records, oldest first,
 * as JSON or (format=csv, or Accept: text/csv) as RFC 4180 CSV whose next page is in `Next-Cursor`.
 */
export const handler = route({ scope: 'audit:read', query: AuditQuery }, async (req) => {
  const answer = await container().audit.list(req.caller, req.query, req.headers.accept);
  if (answer.format === 'json') return { status: 200, body: answer.body };
  return {
    status: 200,
    body: undefined,
    text: { contentType: 'text/csv; charset=utf-8; header=present', body: answer.text },
    headers: {
      'content-disposition': 'attachment; filename="framecast-audit.csv"',
      ...(answer.nextCursor && { 'next-cursor': answer.nextCursor }),
    },
  };
});
