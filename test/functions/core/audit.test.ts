import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_PART_BYTES,
  auditCsv,
  csvCell,
  digestOf,
  jobCreatedRecord,
  jobFinishedRecords,
} from '../../../functions/core/audit.ts';
import type { FrameRecord } from '../../../functions/core/model.ts';
import { jobRecord } from '../../support/jobs.ts';

const job = jobRecord({
  id: 'job_01JD0000000000000000000000',
  tenant: 'studio',
  prompt: 'a lighthouse',
  frames: { start: 1, end: 10_000 },
  seed: 7,
  createdAt: '2026-11-30T10:00:00.000Z',
});

const hex = (n: number) => n.toString(16).padStart(64, '0');

describe('CSV cells', () => {
  it('prefix what a spreadsheet would run with a single quote (OWASP), and quote every cell as RFC 4180 does', () => {
    expect(csvCell('=1+2')).toBe(`"'=1+2"`);
    expect(csvCell('+x')).toBe(`"'+x"`);
    expect(csvCell('-x')).toBe(`"'-x"`);
    expect(csvCell('@x')).toBe(`"'@x"`);
    expect(csvCell('\tx')).toBe(`"'\tx"`);
    expect(csvCell('a "b", c\r\nd')).toBe(`"a ""b"", c\r\nd"`);
    expect(csvCell('')).toBe('""');
  });

  it('never start with a formula character inside their quotes, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const cell = csvCell(s);
        expect(cell.startsWith('"') && cell.endsWith('"')).toBe(true);
        expect(cell.slice(1)).not.toMatch(/^[=+\-@\t\r]/);
      }),
    );
  });

  it('make one header line and one CRLF-terminated line per record', () => {
    const text = auditCsv([jobCreatedRecord(job, { tenant: 'studio', keyId: 'abc', keyName: 'Ana' })]);
    expect(text.endsWith('\r\n')).toBe(true);
    expect(text.split('\r\n')).toHaveLength(3);
    expect(text).toContain('"job.created"');
  });
});

describe('the model image digest', () => {
  it('is the one a reference pins, and null for a tag or anything else', () => {
    expect(digestOf(`registry.example/model@sha256:${hex(1)}`)).toBe(`sha256:${hex(1)}`);
    expect(digestOf('registry.example:5000/model:1.2')).toBeNull();
    expect(digestOf('framecast/reference-model')).toBeNull();
    expect(digestOf('model@sha256:short')).toBeNull();
  });
});

describe('job.finished records', () => {
  it('list every frame made with its version, sha256, seed and input hashes, split into parts that fit an item', () => {
    const frames = Array.from(
      { length: 10_000 },
      (_, i): FrameRecord =>
        ({
          jobId: job.id,
          frame: i + 1,
          status: i === 5 ? 'failed' : 'succeeded',
          seed: 100 + i,
          attempts: 1,
          ...(i !== 5 && { sha256: hex(i), size: 10, key: 'k' }),
          inputs: { plate: hex(i + 1) },
          ...(i === 7 && { selected: 2 }),
        }) as FrameRecord,
    );
    const model = { name: 'reference', image: 'img', digest: null };
    const records = jobFinishedRecords(job, frames, model, '2026-11-30T11:00:00.000Z', 'failed');
    expect(records.length).toBeGreaterThan(1);
    const outputs = records.flatMap((r) => r.outputs ?? []);
    expect(outputs).toHaveLength(9_999);
    expect(outputs.find((o) => o.frame === 8)).toMatchObject({ version: 2, seed: 107 });
    expect(outputs[0]).toEqual({
      frame: 1,
      version: 1,
      sha256: hex(0),
      seed: 100,
      inputs: { plate: hex(1) },
    });
    records.forEach((r, index) => {
      expect(r.part).toEqual({ index, count: records.length });
      expect(r.model).toEqual(model);
      // Well under DynamoDB's 400 KB item limit.
      expect(JSON.stringify(r).length).toBeLessThan(AUDIT_PART_BYTES + 10_000);
    });
    expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    expect(records.map((r) => r.id)).toEqual(records.map((r) => r.id).sort());
  });
});
