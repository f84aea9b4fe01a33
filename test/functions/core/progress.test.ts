import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  jobEnd,
  PROGRESS_INTERVAL_MS,
  PROGRESS_STEPS,
  type ProgressMarks,
  progressDue,
  progressStep,
  unfinishedFrames,
} from '../../../functions/core/progress.ts';
import { JOB_STATUSES, type JobStatus } from '../../../functions/core/schemas.ts';

const NOW = Date.UTC(2025, 0, 1);

/** A job of `total` frames numbered from 1001, of which `succeeded` and `failed` are finished. */
const job = (
  total: number,
  succeeded: number,
  failed = 0,
  more: Partial<{ status: JobStatus; canceled: number } & ProgressMarks> = {},
) => ({
  status: 'running' as JobStatus,
  frames: { start: 1001, end: 1000 + total },
  succeeded,
  failed,
  canceled: 0,
  ...more,
});

describe('when job.progress is due', () => {
  it('announces the first tenth of a running job, counting failed frames as finished', () => {
    expect(progressDue(job(100, 6, 4), NOW)).toEqual({ step: 1, quietUntil: NOW - PROGRESS_INTERVAL_MS });
    expect(progressDue(job(100, 9), NOW)).toBeUndefined();
  });

  it('announces the step reached, not each step passed while it was quiet', () => {
    expect(progressDue(job(100, 57, 0, { progressStep: 2 }), NOW)?.step).toBe(5);
  });

  it('announces a step once', () => {
    expect(progressDue(job(100, 59, 0, { progressStep: 5 }), NOW)).toBeUndefined();
  });

  it('never announces the last step: the job’s own end event says it', () => {
    expect(progressStep(job(100, 99, 1))).toBe(PROGRESS_STEPS);
    expect(progressDue(job(100, 99, 1, { progressStep: 9 }), NOW)).toBeUndefined();
  });

  it('keeps quiet for the interval after an announcement, and speaks once it has passed', () => {
    const quiet = { progressStep: 1, progressAt: NOW - PROGRESS_INTERVAL_MS + 1 };
    expect(progressDue(job(100, 30, 0, quiet), NOW)).toBeUndefined();
    const passed = { progressStep: 1, progressAt: NOW - PROGRESS_INTERVAL_MS };
    expect(progressDue(job(100, 30, 0, passed), NOW)?.step).toBe(3);
  });

  it('announces nothing for a job that is not running', () => {
    for (const status of JOB_STATUSES.filter((s) => s !== 'running'))
      expect(progressDue(job(100, 50, 0, { status }), NOW)).toBeUndefined();
  });

  it('is due exactly when a running job is past its last step, short of the end, and quiet', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }).chain((total) =>
          fc.record({
            total: fc.constant(total),
            finished: fc.nat(total),
            last: fc.option(fc.nat(PROGRESS_STEPS), { nil: undefined }),
            since: fc.option(fc.nat(3 * PROGRESS_INTERVAL_MS), { nil: undefined }),
            status: fc.constantFrom(...JOB_STATUSES),
          }),
        ),
        ({ total, finished, last, since, status }) => {
          const marks = {
            ...(last !== undefined && { progressStep: last }),
            ...(since !== undefined && { progressAt: NOW - since }),
          };
          const due = progressDue(job(total, finished, 0, { status, ...marks }), NOW);
          const step = Math.floor((finished * 10) / total);
          const expected =
            status === 'running' &&
            step > (last ?? 0) &&
            step < 10 &&
            (since === undefined || since >= PROGRESS_INTERVAL_MS);
          expect(due).toEqual(expected ? { step, quietUntil: NOW - PROGRESS_INTERVAL_MS } : undefined);
        },
      ),
    );
  });

  it('over any run of a job, announces rising steps from 1 to 9, never two within the interval, and none missed for good', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.record({ frames: fc.nat(60), waitMs: fc.nat(2 * PROGRESS_INTERVAL_MS) }), {
          maxLength: 60,
        }),
        (total, observations) => {
          let finished = 0;
          let now = NOW;
          let marks: ProgressMarks = {};
          const announced: { step: number; at: number }[] = [];
          for (const o of observations) {
            finished = Math.min(total, finished + o.frames);
            now += o.waitMs;
            const due = progressDue(job(total, finished, 0, marks), now);
            if (!due) continue;
            // What the store's conditional write records.
            marks = { progressStep: due.step, progressAt: now };
            announced.push({ step: due.step, at: now });
          }
          expect(announced.length).toBeLessThanOrEqual(PROGRESS_STEPS - 1);
          for (const [i, a] of announced.entries()) {
            expect(a.step).toBeGreaterThanOrEqual(1);
            expect(a.step).toBeLessThan(PROGRESS_STEPS);
            const before = announced[i - 1];
            if (!before) continue;
            expect(a.step).toBeGreaterThan(before.step);
            expect(a.at - before.at).toBeGreaterThanOrEqual(PROGRESS_INTERVAL_MS);
          }
          // Once quiet, a step reached and not yet announced goes out at the next look.
          const step = progressStep(job(total, finished));
          const later = progressDue(job(total, finished, 0, marks), now + PROGRESS_INTERVAL_MS);
          if (step > (marks.progressStep ?? 0) && step < PROGRESS_STEPS) expect(later?.step).toBe(step);
          else expect(later).toBeUndefined();
        },
      ),
    );
  });
});

describe('how a job ends', () => {
  it('succeeds when every frame succeeded, with job.succeeded', () => {
    expect(jobEnd(job(48, 48))).toEqual({ status: 'succeeded', event: 'job.succeeded' });
  });

  it('fails with one failed frame, with job.failed', () => {
    expect(jobEnd(job(48, 47, 1))).toEqual({ status: 'failed', event: 'job.failed' });
  });

  it('does not end while frames remain, nor a job that is not running', () => {
    expect(jobEnd(job(48, 46, 1))).toBeUndefined();
    for (const status of ['queued', 'succeeded', 'failed', 'canceled'] as const)
      expect(jobEnd(job(48, 48, 0, { status }))).toBeUndefined();
  });

  it('ends a running job exactly when its frames are finished, failed if any failed', () => {
    fc.assert(
      fc.property(
        fc.nat(50),
        fc.nat(50),
        fc.nat(50),
        fc.constantFrom(...JOB_STATUSES),
        (succeeded, failed, remaining, status) => {
          fc.pre(succeeded + failed + remaining > 0);
          const end = jobEnd(job(succeeded + failed + remaining, succeeded, failed, { status }));
          if (remaining > 0 || status !== 'running') expect(end).toBeUndefined();
          else expect(end?.status).toBe(failed > 0 ? 'failed' : 'succeeded');
          if (end) expect(end.event).toBe(`job.${end.status}`);
        },
      ),
    );
  });

  it('counts as canceled, on a cancel, every frame not finished', () => {
    fc.assert(
      fc.property(fc.nat(50), fc.nat(50), fc.nat(50), (succeeded, failed, remaining) => {
        fc.pre(succeeded + failed + remaining > 0);
        const j = job(succeeded + failed + remaining, succeeded, failed);
        expect(unfinishedFrames(j)).toBe(remaining);
      }),
    );
  });
});
