import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_STATUSES, JOB_STATUSES, type JobStatus } from '../../../functions/core/schemas.ts';
import {
  canMoveFrame,
  canMoveJob,
  finalStatus,
  IllegalTransition,
  isTerminalJob,
  jobStatusesBefore,
  moveFrame,
  moveJob,
} from '../../../functions/core/state.ts';

describe('the job state machine', () => {
  it('refuses every move out of a terminal status', () => {
    for (const from of ['succeeded', 'failed', 'canceled'] as const) {
      for (const to of JOB_STATUSES) {
        expect(canMoveJob(from, to)).toBe(false);
        expect(() => moveJob(from, to)).toThrow(IllegalTransition);
      }
    }
  });

  it('never goes back to queued, and only a running job can succeed', () => {
    for (const from of JOB_STATUSES) expect(canMoveJob(from, 'queued')).toBe(false);
    expect(jobStatusesBefore('succeeded')).toEqual(['running']);
    expect(jobStatusesBefore('canceled').sort()).toEqual(['queued', 'running']);
  });

  it('ends any random walk of legal moves in at most three steps, in a terminal status', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...JOB_STATUSES), { maxLength: 20 }), (wanted) => {
        let status: JobStatus = 'queued';
        let moves = 0;
        for (const to of wanted) {
          if (canMoveJob(status, to)) {
            status = moveJob(status, to);
            moves++;
          }
        }
        expect(moves).toBeLessThanOrEqual(2);
        if (moves === 2) expect(isTerminalJob(status)).toBe(true);
      }),
    );
  });
});

describe('the frame state machine', () => {
  it('lets a running frame be tried again, and a finished frame be re-rolled, but never revives a canceled one', () => {
    expect(canMoveFrame('running', 'running')).toBe(true);
    expect(canMoveFrame('succeeded', 'running')).toBe(true);
    for (const to of FRAME_STATUSES) expect(canMoveFrame('canceled', to)).toBe(false);
    expect(() => moveFrame('pending', 'succeeded')).toThrow(/pending to succeeded/);
  });
});

describe('when a job is finished', () => {
  it('is not finished while frames remain, fails with one failed frame, and succeeds otherwise', () => {
    fc.assert(
      fc.property(
        fc.nat(50),
        fc.nat(50),
        fc.nat(50),
        fc.nat(50),
        (succeeded, failed, canceled, remaining) => {
          const total = succeeded + failed + canceled + remaining;
          const to = finalStatus({ total, succeeded, failed, canceled });
          if (remaining > 0) expect(to).toBeUndefined();
          else expect(to).toBe(failed > 0 ? 'failed' : 'succeeded');
        },
      ),
    );
  });
});
