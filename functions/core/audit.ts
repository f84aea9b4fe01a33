import type { FrameRecord, JobRecord, VersionRecord } from './model.ts';
import type { Actor, AuditKind, AuditOutput, AuditRecord } from './schemas.ts';

/**
 * The audit trail (issue 12; docs/operations.md, "Audit trail"): one record per decision or generation
 * (a job created, finished, approved or rejected, a frame re-rolled, a version selected), written once in
 * the transaction of the change it records and never updated. Pure: the stores write them, the audit
 * service lists and exports them.
 */

/** Seven years: what disclosure and tax-record rules commonly ask for; the frames' own retention is separate. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 2557;

/**
 * A record's id, its position in the tenant's trail: time first, so a time range is one key range; then the
 * job, the kind and what tells two records of one kind and job apart (a unit, a version, a part).
 */
export const auditId = (at: string, jobId: string, kind: AuditKind, ...rest: (string | number)[]): string =>
  [at, jobId, kind, ...rest.map(String)].join('#');

/** What the API knows of a model: its name. The worker adds the image and digest it ran. */
export interface ModelIdentity {
  readonly name: string;
  readonly image?: string;
  /** `sha256:...`; null when the registry gives none (a local image). */
  readonly digest?: string | null;
}

/** The digest a reference pins (`repo@sha256:...`), or null for a tag, which names no content. */
export function digestOf(image: string): string | null {
  const at = image.lastIndexOf('@');
  if (at < 0) return null;
  const digest = image.slice(at + 1);
  return /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : null;
}

const base = (job: JobRecord, kind: AuditKind, at: string, id: string, model: ModelIdentity) => ({
  id,
  at,
  kind,
  tenant: job.tenant,
  jobId: job.id,
  shot: job.shot,
  model: {
    name: model.name,
    ...(model.image !== undefined && { image: model.image }),
    ...(model.digest !== undefined && { digest: model.digest }),
  },
});

/** The job as submitted: who, the model, the prompt, the seed schedule, params and the inputs bound. */
export function jobCreatedRecord(job: JobRecord, by: Actor): AuditRecord {
  return {
    ...base(job, 'job.created', job.createdAt, auditId(job.createdAt, job.id, 'job.created'), {
      name: job.model,
    }),
    by,
    prompt: job.prompt,
    ...(job.negativePrompt !== undefined && { negativePrompt: job.negativePrompt }),
    seed: job.seed,
    seedMode: job.seedMode,
    ...(job.params !== undefined && { params: job.params }),
    frames: job.frames,
    ...(job.inputs && {
      inputs: Object.fromEntries(
        Object.entries(job.inputs).map(([name, i]) => [
          name,
          {
            asset: i.asset,
            offset: i.offset,
            outside: i.outside,
            ...(i.frames !== undefined && { frames: i.frames }),
          },
        ]),
      ),
    }),
  };
}

/** An approval: who let a job waiting for review make the rest of its frames. */
export function approvedRecord(job: JobRecord, by: Actor, at: string): AuditRecord {
  return { ...base(job, 'job.approved', at, auditId(at, job.id, 'job.approved'), { name: job.model }), by };
}

/**
 * A reopen (docs/reliability.md, "Poison and redrive"): failed frames redriven from the frame DLQ once
 * their fault was fixed, to be made again. `reason` is what they had failed with; `status` what the job
 * became. The frames made then are in the job's next job.finished record.
 */
export function reopenedRecord(
  job: JobRecord,
  frames: readonly number[],
  reason: string,
  at: string,
): AuditRecord {
  const sorted = [...frames].sort((a, b) => a - b);
  return {
    ...base(job, 'job.reopened', at, auditId(at, job.id, 'job.reopened'), { name: job.model }),
    status: job.status,
    frames: { start: sorted[0]!, end: sorted.at(-1)! },
    reason: `frames ${sorted.join(', ')} reopened; they had failed: ${reason}`.slice(0, 2000),
  };
}

/**
 * Bytes of outputs per end record (job.finished, job.canceled, job.rejected): a 10,000-frame shot (about
 * 1.1 MB of outputs, more with input hashes) is a dozen parts. Small enough for an item (400 KB) and for
 * one partition's write rate (1,000 units a second, a unit a KB), which all of a tenant's records share.
 */
export const AUDIT_PART_BYTES = 100_000;

/** How a job ended, for its end record(s): a worker finished it, or a person canceled or rejected it. */
export interface JobEnd {
  readonly kind: 'job.finished' | 'job.canceled' | 'job.rejected';
  readonly status: string;
  readonly at: string;
  readonly model: ModelIdentity;
  readonly by?: Actor;
  readonly reason?: string;
}

/**
 * The end of a job with every frame it made, as the records say (the selected version's file), split into
 * parts that fit an item. A job that ends by a cancel or a reject lists the frames made until then.
 */
export function jobEndRecords(job: JobRecord, frames: readonly FrameRecord[], end: JobEnd): AuditRecord[] {
  const outputs: AuditOutput[] = frames
    .filter((f) => f.status === 'succeeded' && f.sha256 !== undefined)
    .map((f) => ({
      frame: f.frame,
      version: f.selected ?? 1,
      sha256: f.sha256!,
      seed: f.seed,
      ...(f.inputs !== undefined && { inputs: f.inputs }),
    }));
  const parts: AuditOutput[][] = [[]];
  let bytes = 0;
  for (const o of outputs) {
    const size = JSON.stringify(o).length;
    if (bytes + size > AUDIT_PART_BYTES && parts.at(-1)!.length > 0) {
      parts.push([]);
      bytes = 0;
    }
    parts.at(-1)!.push(o);
    bytes += size;
  }
  return parts.map((list, index) => ({
    ...base(
      job,
      end.kind,
      end.at,
      auditId(end.at, job.id, end.kind, String(index).padStart(4, '0')),
      end.model,
    ),
    ...(end.by && { by: end.by }),
    status: end.status,
    prompt: job.prompt,
    seed: job.seed,
    seedMode: job.seedMode,
    frames: job.frames,
    outputs: list,
    ...(parts.length > 1 && { part: { index, count: parts.length } }),
    ...(end.reason !== undefined && { reason: end.reason }),
  }));
}

/** The records of a job a worker finished (succeeded or failed), with the model it ran. */
export const jobFinishedRecords = (
  job: JobRecord,
  frames: readonly FrameRecord[],
  model: ModelIdentity,
  at: string,
  status: string,
): AuditRecord[] => jobEndRecords(job, frames, { kind: 'job.finished', status, at, model });

/** A re-roll made or failed: who asked, the version, its seed and params, and each frame's file. */
export function rerolledRecord(
  job: JobRecord,
  v: VersionRecord,
  model: ModelIdentity,
  at: string,
): AuditRecord {
  const outputs = Object.entries(v.frames)
    .filter(([, f]) => f.sha256 !== undefined)
    .map(([frame, f]) => ({ frame: Number(frame), version: v.version, sha256: f.sha256!, seed: f.seed }));
  return {
    ...base(job, 'frame.rerolled', at, auditId(at, job.id, 'frame.rerolled', v.start, v.version), model),
    ...(v.requestedBy && { by: v.requestedBy }),
    prompt: job.prompt,
    seed: v.seed,
    ...(v.params !== undefined && { params: v.params }),
    frames: { start: v.start, end: v.end },
    status: v.status,
    version: v.version,
    outputs,
  };
}

/** A version chosen for the sequence name: who chose it, and the files the name now holds. */
export function selectedRecord(job: JobRecord, v: VersionRecord, by: Actor, at: string): AuditRecord {
  const { status: _status, ...made } = rerolledRecord(job, v, { name: job.model }, at);
  return {
    ...made,
    id: auditId(at, job.id, 'version.selected', v.start, v.version),
    kind: 'version.selected',
    by,
  };
}

// ---- CSV export (RFC 4180) -------------------------------------------------------------------------------

/** The CSV columns, in order; objects are written as JSON in their cell. */
export const AUDIT_CSV_COLUMNS = [
  'id',
  'at',
  'kind',
  'tenant',
  'jobId',
  'shot',
  'keyId',
  'keyName',
  'model',
  'modelImage',
  'modelDigest',
  'prompt',
  'negativePrompt',
  'seed',
  'seedMode',
  'frames',
  'params',
  'inputs',
  'status',
  'version',
  'outputs',
  'part',
  'reason',
] as const;

/**
 * A cell as a spreadsheet may safely open it. OWASP's advice on CSV injection: a cell that starts with
 * `=`, `+`, `-`, `@`, a tab or a carriage return may be run as a formula, so it is prefixed with a single
 * quote; a prompt is text, and its first character decides nothing. Then RFC 4180 quoting: every cell in
 * double quotes, a double quote doubled.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${safe.replaceAll('"', '""')}"`;
}

const cellOf = (r: AuditRecord, column: (typeof AUDIT_CSV_COLUMNS)[number]): string => {
  const json = (v: unknown) => (v === undefined ? '' : JSON.stringify(v));
  switch (column) {
    case 'keyId':
      return r.by?.keyId ?? '';
    case 'keyName':
      return r.by?.keyName ?? '';
    case 'model':
      return r.model.name;
    case 'modelImage':
      return r.model.image ?? '';
    case 'modelDigest':
      return r.model.digest ?? '';
    case 'frames':
      return r.frames ? `${r.frames.start}-${r.frames.end}` : '';
    case 'params':
    case 'inputs':
    case 'outputs':
    case 'part':
      return json(r[column]);
    default: {
      const v = r[column];
      return v === undefined ? '' : String(v);
    }
  }
};

/** The header line and one line per record, CRLF-terminated as RFC 4180 writes them, in UTF-8. */
export function auditCsv(records: readonly AuditRecord[]): string {
  const lines = [AUDIT_CSV_COLUMNS.map(csvCell).join(',')];
  for (const r of records) lines.push(AUDIT_CSV_COLUMNS.map((c) => csvCell(cellOf(r, c))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
