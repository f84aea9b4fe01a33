import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import exifr from 'exifr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditPut } from '../../functions/adapters/store/audit.ts';
import { AUDIT_CSV_COLUMNS } from '../../functions/core/audit.ts';
import { TRAINED_ALGORITHMIC_MEDIA } from '../../functions/core/png.ts';
import type { AuditRecord, JobResponse } from '../../functions/core/schemas.ts';
import { createApiKey } from '../../functions/services/api-keys.ts';
import { ROUTES } from '../../functions/shared/routes.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';

/**
 * The audit trail on the local stack (issue 12; docs/operations.md, "Audit trail"): a job's life is
 * recorded (who, model, prompt, seeds, frames), exported as CSV that a strict RFC 4180 parser reads back
 * exactly, safe to open in a spreadsheet, never altered through any route nor by a second write; and the
 * frames the stack makes declare themselves AI-generated to a standard XMP reader.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;
let db: DynamoDBDocumentClient;
let key: string;

const TENANT = 'audit-studio';
// A key name and prompts with everything a CSV writer can get wrong, and cells a spreadsheet would run.
const KEY_NAME = '+Ana "supervisor", Paris';
const PROMPT = '=HYPERLINK("http://evil.example","click"), a "quoted" lighthouse,\r\nnew line 東京の夜景 🌅';
const NEGATIVE = '-1+2 @SUM(A1) blurry';
const REASON = 'wrong\nlens, "too wide"';

beforeAll(async () => {
  stack = await startLocalStack({ worker: { retryBaseMs: 5 } });
  key = await createApiKey(stack.app.apiKeys, { tenant: TENANT, name: KEY_NAME });
  api = client(stack.url, key);
  db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
});
afterAll(() => stack?.stop());

const gated = (shot: string) => ({
  shot,
  prompt: PROMPT,
  negativePrompt: NEGATIVE,
  frames: { start: 1, end: 4 },
  seed: 21,
  width: 64,
  height: 64,
  params: { strength: 0.5 },
  review: { frames: [2] },
});
const waiting = (job: JobResponse) => job.status === 'awaiting_review' || isFinished(job);

async function allRecords(query: Record<string, string | number> = {}): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.api.listAudit({ ...query, ...(cursor && { cursor }) });
    out.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/** Every audit item of the tenant exactly as stored, keys and expiry included. */
async function storedItems(): Promise<Record<string, unknown>[]> {
  const out = await db.send(
    new QueryCommand({
      TableName: stack.env.FRAMECAST_TABLE!,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `AUDIT#${TENANT}` },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}

/**
 * A strict RFC 4180 reader: fields separated by commas, records by CRLF; a quoted field may hold commas,
 * CRLF and doubled quotes; an unquoted one may hold none of them. Anything else throws.
 */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const fail = (why: string) => {
    throw new Error(`invalid CSV at ${i}: ${why}`);
  };
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) fail('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') {
        if (text[i] === '"' || text[i] === '\n') fail('quote or bare LF in an unquoted field');
        field += text[i++];
      }
    }
    row.push(field);
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text.startsWith('\r\n', i)) {
      i += 2;
      rows.push(row);
      row = [];
      if (i === text.length) return rows;
      continue;
    }
    if (i === text.length) {
      rows.push(row);
      return rows;
    }
    fail(`unexpected ${JSON.stringify(text[i])}`);
  }
}

/** What a cell holds once the formula guard's leading quote is taken off. */
const unguarded = (cell: string) => (/^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell);

describe('the audit trail of a job', () => {
  let approved: JobResponse;
  let rejected: JobResponse;
  let canceled: JobResponse;
  let records: AuditRecord[];
  let firstFrames: { frame: number; sha256?: string; seed: number }[];

  beforeAll(async () => {
    const a = await api.api.createJob(gated('AUDIT_SH'));
    const b = await api.api.createJob(gated('AUDIT_REJECT_SH'));
    const c = await api.api.createJob(gated('AUDIT_CANCEL_SH'));
    await api.waitForJob(a.id, waiting);
    await api.waitForJob(b.id, waiting);
    await api.waitForJob(c.id, waiting);
    await api.api.approveJob(a.id);
    await api.api.rejectJob(b.id, { reason: REASON });
    await api.api.cancelJob(c.id);
    canceled = await api.api.getJob(c.id);
    approved = await api.waitForJob(a.id, isFinished);
    rejected = await api.api.getJob(b.id);
    firstFrames = await api.allFrames(a.id);
    await api.api.rerollFrame(a.id, 3, { seed: 99 });
    await eventually(async () => {
      const d = await api.api.getFrame(a.id, 3);
      return d.versions.find((v) => v.version === 2 && v.status === 'succeeded');
    }, 'the re-roll of frame 3');
    await api.api.selectFrameVersion(a.id, 3, 2);
    records = await allRecords();
  }, 120_000);

  it('records who created each job, the model, prompt, seed schedule and params, in the job’s own transaction', () => {
    expect(approved.status).toBe('succeeded');
    expect(rejected.status).toBe('canceled');
    expect(canceled.status).toBe('canceled');
    const created = records.filter((r) => r.kind === 'job.created');
    expect(created.map((r) => r.jobId).sort()).toEqual([approved.id, rejected.id, canceled.id].sort());
    for (const r of created) {
      expect(r).toMatchObject({
        tenant: TENANT,
        by: { tenant: TENANT, keyName: KEY_NAME },
        model: { name: 'reference' },
        prompt: PROMPT,
        negativePrompt: NEGATIVE,
        seed: 21,
        seedMode: 'per-frame',
        params: { strength: 0.5 },
        frames: { start: 1, end: 4 },
      });
      expect(r.by?.keyId).toMatch(/^[0-9a-f]{12}$/);
    }
  });

  it('lists the approval, the rejection with its reason, every frame made, the re-roll and the selection, in time order', async () => {
    const ofA = records.filter((r) => r.jobId === approved.id).map((r) => r.kind);
    expect(ofA).toEqual([
      'job.created',
      'job.approved',
      'job.finished',
      'frame.rerolled',
      'version.selected',
    ]);
    // A job a person ends lists the frames it made until then (here the review frame).
    const ofB = records.filter((r) => r.jobId === rejected.id);
    expect(ofB.map((r) => r.kind)).toEqual(['job.created', 'job.rejected']);
    const [madeB] = (await api.allFrames(rejected.id)).filter((f) => f.status === 'succeeded');
    expect(ofB[1]).toMatchObject({
      by: { keyName: KEY_NAME },
      reason: REASON,
      status: 'canceled',
      outputs: [{ frame: 2, version: 1, sha256: madeB!.sha256, seed: madeB!.seed }],
    });
    // A cancel's own record is written with it; the frames it leaves follow once none can be made any more.
    const ofC = records.filter((r) => r.jobId === canceled.id);
    expect(ofC.map((r) => r.kind)).toEqual(['job.created', 'job.canceled', 'job.canceled']);
    expect(ofC[1]).toMatchObject({ by: { keyName: KEY_NAME }, status: 'canceled', outputs: [] });
    expect(ofC[2]).toMatchObject({
      by: { keyName: KEY_NAME },
      part: { index: 1, count: 2 },
      outputs: [{ frame: 2 }],
    });
    expect(records.map((r) => r.at)).toEqual(records.map((r) => r.at).sort());

    const finished = records.find((r) => r.kind === 'job.finished')!;
    // Locally the reference model runs an image with no registry digest: recorded as null, never guessed.
    expect(finished.model).toEqual({ name: 'reference', image: 'framecast/reference-model', digest: null });
    expect(finished.status).toBe('succeeded');
    expect(finished.outputs).toEqual(
      firstFrames.map((f) => ({ frame: f.frame, version: 1, sha256: f.sha256, seed: f.seed })),
    );

    const reroll = records.find((r) => r.kind === 'frame.rerolled')!;
    const v2 = (await api.api.getFrame(approved.id, 3)).versions.find((v) => v.version === 2)!;
    expect(reroll).toMatchObject({
      by: { keyName: KEY_NAME },
      version: 2,
      seed: 99,
      status: 'succeeded',
      model: { image: 'framecast/reference-model', digest: null },
      outputs: [{ frame: 3, version: 2, sha256: v2.sha256, seed: 99 }],
    });
    expect(records.find((r) => r.kind === 'version.selected')).toMatchObject({
      by: { keyName: KEY_NAME },
      version: 2,
      outputs: [{ frame: 3, version: 2, sha256: v2.sha256 }],
    });
  });

  it('pages with its cursor and takes a time range [from, to)', async () => {
    expect(await allRecords({ limit: 1 })).toEqual(records);
    const third = records[2]!;
    const fromThird = await allRecords({ from: third.at });
    expect(fromThird[0]!.at >= third.at).toBe(true);
    expect(fromThird.map((r) => r.id)).toEqual(records.filter((r) => r.at >= third.at).map((r) => r.id));
    const beforeThird = await allRecords({ to: third.at });
    expect(beforeThird.map((r) => r.id)).toEqual(records.filter((r) => r.at < third.at).map((r) => r.id));
    expect(await allRecords({ to: '2000-01-01' })).toEqual([]);
  });

  it('exports valid RFC 4180 CSV that reads back to the same records, with formula-like cells guarded', async () => {
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const { csv, nextCursor } = await api.api.exportAuditCsv({ limit: 3, ...(cursor && { cursor }) });
      const rows = parseCsv(csv);
      expect(rows[0]).toEqual([...AUDIT_CSV_COLUMNS]);
      pages.push(...rows.slice(1));
      cursor = nextCursor;
    } while (cursor);
    expect(pages).toHaveLength(records.length);
    const col = (name: (typeof AUDIT_CSV_COLUMNS)[number]) => AUDIT_CSV_COLUMNS.indexOf(name);
    pages.forEach((row, n) => {
      const r = records[n]!;
      expect(row).toHaveLength(AUDIT_CSV_COLUMNS.length);
      expect(row[col('id')]).toBe(r.id);
      expect(row[col('kind')]).toBe(r.kind);
      expect(unguarded(row[col('prompt')]!)).toBe(r.prompt ?? '');
      expect(unguarded(row[col('negativePrompt')]!)).toBe(r.negativePrompt ?? '');
      expect(unguarded(row[col('keyName')]!)).toBe(r.by?.keyName ?? '');
      expect(row[col('reason')]).toBe(r.reason ?? '');
      expect(row[col('outputs')] ? JSON.parse(row[col('outputs')]!) : undefined).toEqual(r.outputs);
      expect(row[col('params')] ? JSON.parse(row[col('params')]!) : undefined).toEqual(r.params);
      // No cell starts with what a spreadsheet would run (OWASP, CSV injection).
      for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    });
    const created = pages.find((row) => row[col('kind')] === 'job.created')!;
    expect(created[col('prompt')]).toBe(`'${PROMPT}`);
    expect(created[col('keyName')]).toBe(`'${KEY_NAME}`);

    // Accept: text/csv asks for the same export without format=.
    const res = await fetch(`${stack.url}/v1/audit?limit=1`, {
      headers: { authorization: `Bearer ${key}`, accept: 'text/csv' },
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(parseCsv(await res.text())[1]?.[0]).toBe(records[0]!.id);
  });

  it('cannot be altered through any route: every record is as it was after each route is tried', async () => {
    const before = await storedItems();
    expect(before.length).toBe(records.length);
    const tamper = { ...records[0]!, prompt: 'tampered', by: { tenant: TENANT, keyId: 'forged' } };
    const ids = { id: approved.id, frame: '3', file: 'index.html' };
    for (const r of ROUTES) {
      const path = r.path.replace(
        /\{(\w+)\}/g,
        (_, name: string) => ids[name as keyof typeof ids] ?? approved.id,
      );
      const res = await api.call(r.method, path, r.method === 'GET' ? undefined : tamper);
      expect(res.status, `${r.method} ${path}`).toBeLessThan(500);
    }
    // Methods the table does not route for the audit path are not found, whatever they carry.
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await fetch(`${stack.url}/v1/audit`, { method, body: JSON.stringify(tamper) });
      expect([404, 405], `${method} /v1/audit`).toContain(res.status);
    }
    const after = new Map((await storedItems()).map((item) => [item.sk, item]));
    for (const item of before) expect(after.get(item.sk)).toEqual(item);
  });

  it('refuses a second write of a record, directly on the table, whatever it holds', async () => {
    const record = records[0]!;
    const { Put } = auditPut(stack.env.FRAMECAST_TABLE!, { ...record, prompt: 'rewritten' }, 1);
    await expect(db.send(new PutCommand(Put!))).rejects.toMatchObject({
      name: 'ConditionalCheckFailedException',
    });
    await expect(stack.app.auditStore.put(record)).rejects.toMatchObject({
      name: 'ConditionalCheckFailedException',
    });
    expect((await allRecords())[0]).toEqual(record);
  });

  it('shows a tenant its own trail only, and names the field of a bad query', async () => {
    const other = client(stack.url, await createApiKey(stack.app.apiKeys, { tenant: 'audit-other' }));
    expect((await other.api.listAudit()).records).toEqual([]);
    expect((await other.listAudit({ tenant: TENANT })).status).toBe(404);
    expect((await api.listAudit({ tenant: TENANT })).status).toBe(200);
    const bad: [Record<string, unknown>, string][] = [
      [{ from: 'yesterday' }, 'query.from'],
      [{ to: '2026-13-01' }, 'query.to'],
      [{ from: '2026-02-01', to: '2026-01-01' }, 'query.to'],
      [{ limit: 0 }, 'query.limit'],
      [{ cursor: 'bm90IGEgY3Vyc29y' }, 'cursor'],
    ];
    for (const [query, field] of bad) {
      const res = await api.call<{ error: { code: string; message: string } }>(
        'GET',
        `/v1/audit?${new URLSearchParams(query as Record<string, string>)}`,
      );
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error.message).toContain(field);
    }
    const xml = await api.call<{ error: { message: string } }>('GET', '/v1/audit?format=xml');
    expect(xml.status).toBe(400);
    expect(xml.body.error.message).toContain('query.format');
  });
});

describe('frames made by the local stack', () => {
  it('carry the IPTC digital source type of generative AI in XMP, as a standard reader (exifr) reports', async () => {
    const job = await api.api.createJob({
      shot: 'XMP_SH',
      prompt: 'a frame',
      frames: { start: 1, end: 1 },
      width: 64,
      height: 64,
    });
    await api.waitForJob(job.id, isFinished);
    const [frame] = await api.allFrames(job.id);
    const png = Buffer.from(await (await fetch(frame!.url!)).arrayBuffer());
    const meta = (await exifr.parse(png, { xmp: true })) as Record<string, unknown>;
    expect(meta.DigitalSourceType).toBe(TRAINED_ALGORITHMIC_MEDIA);
  });
});
