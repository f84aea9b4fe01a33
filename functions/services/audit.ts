import type { AuditStore } from '../adapters/store/audit.ts';
import type { Caller } from '../core/api-keys.ts';
import { auditCsv } from '../core/audit.ts';
import { decodeAuditCursor, encodeCursor } from '../core/cursor.ts';
import { invalid, notFound } from '../core/errors.ts';
import type { AuditList, AuditQuery } from '../core/schemas.ts';

export interface AuditServiceDeps {
  readonly store: Pick<AuditStore, 'list'>;
}

/** The earliest `from`: every record of the tenant. */
const BEGINNING = '1970-01-01T00:00:00.000Z';

export type AuditAnswer =
  | { readonly format: 'json'; readonly body: AuditList }
  | { readonly format: 'csv'; readonly text: string; readonly nextCursor?: string };

/**
 * `GET /v1/audit`: the caller's tenant's generation records in a time range, oldest first, as JSON or as
 * CSV for a spreadsheet or a disclosure filing (docs/operations.md, "Audit trail"). Read only: nothing in
 * the API writes an audit record except the change it records.
 */
export class AuditService {
  constructor(private readonly deps: AuditServiceDeps) {}

  async list(caller: Caller, query: AuditQuery, accept?: string, now = new Date()): Promise<AuditAnswer> {
    // A tenant is named only to be explicit: another tenant's trail is not found, as its jobs are not.
    if (query.tenant !== undefined && query.tenant !== caller.tenant) throw notFound('tenant');
    const from = query.from ?? BEGINNING;
    const to = query.to ?? now.toISOString();
    if (from >= to) throw invalid('query.to', 'must be later than from');
    const format = query.format ?? (accepts(accept, 'text/csv') ? 'csv' : 'json');
    const after = query.cursor === undefined ? undefined : decodeAuditCursor(query.cursor);
    const { records, last } = await this.deps.store.list(
      caller.tenant,
      { from, to, limit: query.limit, ...(after !== undefined && { after }) },
      now,
    );
    const nextCursor = last === undefined ? undefined : encodeCursor(last);
    if (format === 'csv') return { format, text: auditCsv(records), ...(nextCursor && { nextCursor }) };
    return { format, body: { records, ...(nextCursor && { nextCursor }) } };
  }
}

/** Whether an Accept header asks for `type` before JSON (a client that names only text/csv gets CSV). */
function accepts(header: string | undefined, type: string): boolean {
  if (!header) return false;
  const types = header.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  const csv = types.indexOf(type);
  const json = types.findIndex((t) => t === 'application/json' || t === '*/*');
  return csv >= 0 && (json < 0 || csv < json);
}
