import type { JobRecord } from '../../functions/core/model.ts';

/**
 * A job record as the store keeps it, for tests that write or read one without the API: a running job of
 * 64x64 frames on the reference model, nothing finished yet. A test sets what it is about in `fields`;
 * the prefix follows the tenant, shot and id unless given.
 */
export function jobRecord(fields: Partial<JobRecord> & Pick<JobRecord, 'id'>): JobRecord {
  const tenant = fields.tenant ?? 'dev';
  const shot = fields.shot ?? 'SH010';
  return {
    tenant,
    shot,
    status: 'running',
    prompt: 'p',
    model: 'reference',
    width: 64,
    height: 64,
    frames: { start: 1, end: 2 },
    seed: 1,
    seedMode: 'per-frame',
    priority: 50,
    succeeded: 0,
    failed: 0,
    canceled: 0,
    failedFrames: [],
    createdAt: '2026-11-30T00:00:00.000Z',
    bucket: 'b',
    prefix: `${tenant}/${shot}/${fields.id}/`,
    requestHash: 'h',
    ...fields,
  };
}
