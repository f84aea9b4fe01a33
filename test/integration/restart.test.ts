import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'framecast-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('local mode stopped in mid-shot', () => {
  it('keeps its data and finishes the shot on the next start', async () => {
    const key = `fc_${'r'.repeat(40)}`;
    const first = await startLocalStack({
      dataDir,
      devApiKey: key,
      referenceModel: { renderDelayMs: 100 },
      worker: { concurrency: 1 },
    });
    let jobId: string;
    try {
      const api = client(first.url, key);
      const created = await api.createJob({
        shot: 'RESTART_SH',
        prompt: 'rain on a tin roof',
        frames: { start: 1, end: 30 },
        width: 64,
        height: 64,
      });
      jobId = created.body.id;
      await api.waitForJob(jobId, (j) => j.frames.succeeded >= 2);
    } finally {
      await first.stop();
    }

    const second = await startLocalStack({ dataDir, devApiKey: key });
    try {
      const api = client(second.url, key);
      const before = (await api.getJob(jobId)).body;
      expect(before.status).toBe('running');
      expect(before.frames.succeeded).toBeGreaterThanOrEqual(2);
      const done = await api.waitForJob(jobId, isFinished);
      expect(done.status).toBe('succeeded');
      expect(done.frames).toMatchObject({ total: 30, succeeded: 30, failed: 0, canceled: 0 });
      const frames = await api.allFrames(jobId);
      expect(frames.filter((f) => f.status === 'succeeded')).toHaveLength(30);
    } finally {
      await second.stop();
    }
  });
});
