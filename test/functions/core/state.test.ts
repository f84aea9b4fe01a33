import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_STATUSES,
  type FrameStatus,
  JOB_STATUSES,
  type JobStatus,
  VERSION_STATUSES,
  type VersionStatus,
} from '../../../functions/core/schemas.ts';
import {
  canMoveFrame,
  canMoveJob,
  canMoveVersion,
  finalStatus,
  frameStatusesBefore,
  generatingJobStatuses,
  IllegalTransition,
  isTerminalJob,
  jobStartStatuses,
  jobStatusesBefore,
  liveJobStatuses,
  moveFrame,
  moveJob,
  reopenedFrameStatus,
  reopenedJobStatus,
  reopeningJobStatuses,
  versionStatusesBefore,
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
    expect(jobStatusesBefore('canceled').sort()).toEqual(['awaiting_review', 'queued', 'running']);
  });

  it('fails only a running job: a queued job has no frame that could have failed', () => {
    expect(jobStatusesBefore('failed')).toEqual(['running']);
  });

  it('counts a job as live until it ends, and as generating only while it runs', () => {
    expect(liveJobStatuses()).toEqual(['queued', 'running', 'awaiting_review']);
    expect(generatingJobStatuses()).toEqual(['running']);
    for (const s of JOB_STATUSES) expect(liveJobStatuses().includes(s)).toBe(!isTerminalJob(s));
  });

  it('names as statuses before a move exactly those the move is legal from', () => {
    fc.assert(
      fc.property(fc.constantFrom(...JOB_STATUSES), fc.constantFrom(...JOB_STATUSES), (from, to) => {
        expect(jobStatusesBefore(to).includes(from)).toBe(canMoveJob(from, to));
      }),
    );
  });

  it('starts a job only from queued, never from awaiting_review (an approve is no start)', () => {
    expect(jobStartStatuses()).toEqual(['queued']);
  });

  it('waits for review only while running, and goes from there back to running or to canceled', () => {
    expect(jobStatusesBefore('awaiting_review')).toEqual(['running']);
    expect(JOB_STATUSES.filter((to) => canMoveJob('awaiting_review', to)).sort()).toEqual([
      'canceled',
      'running',
    ]);
    expect(canMoveJob('awaiting_review', 'succeeded')).toBe(false);
  });

  it('ends any random walk of legal moves in a terminal status within two moves, but for review round trips', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...JOB_STATUSES), { maxLength: 20 }), (wanted) => {
        let status: JobStatus = 'queued';
        let moves = 0;
        for (const to of wanted) {
          if (canMoveJob(status, to)) {
            const review = status === 'awaiting_review' || to === 'awaiting_review';
            status = moveJob(status, to);
            // A review round trip (running -> awaiting_review -> running) is the only way to go back.
            if (!review || isTerminalJob(status)) moves++;
          }
        }
        expect(moves).toBeLessThanOrEqual(2);
        if (moves === 2) expect(isTerminalJob(status)).toBe(true);
      }),
    );
  });
});

describe('reopening failed frames (a redriven dead letter)', () => {
  it('reopens only failed frames, and only a failed job moves (back to running); a live job keeps its status', () => {
    expect(reopenedFrameStatus()).toBe('failed');
    expect(reopenedJobStatus('failed')).toBe('running');
    for (const s of JOB_STATUSES.filter((s) => s !== 'failed')) expect(reopenedJobStatus(s)).toBeUndefined();
    expect(reopeningJobStatuses()).toEqual(['queued', 'running', 'awaiting_review', 'failed']);
  });

  it('leaves failed an end for the worker: the machine itself still has no move out of it', () => {
    expect(isTerminalJob('failed')).toBe(true);
    expect(liveJobStatuses()).not.toContain('failed');
    for (const to of JOB_STATUSES) expect(canMoveJob('failed', to)).toBe(false);
    for (const to of FRAME_STATUSES) expect(canMoveFrame('failed', to)).toBe(false);
  });

  it('never reopens a succeeded or canceled job', () => {
    expect(reopeningJobStatuses()).not.toContain('succeeded');
    expect(reopeningJobStatuses()).not.toContain('canceled');
  });
});

describe('the frame state machine', () => {
  it('lets a running frame be tried again, but never moves a finished or canceled frame (re-roll adds its own move)', () => {
    expect(canMoveFrame('running', 'running')).toBe(true);
    expect(canMoveFrame('succeeded', 'running')).toBe(false);
    expect(canMoveFrame('failed', 'running')).toBe(false);
    for (const to of FRAME_STATUSES) expect(canMoveFrame('canceled', to)).toBe(false);
    expect(() => moveFrame('pending', 'succeeded')).toThrow(/pending to succeeded/);
  });

  it('takes a frame that is pending or running, and finishes only a running one', () => {
    expect(frameStatusesBefore('running')).toEqual(['pending', 'running']);
    expect(frameStatusesBefore('succeeded')).toEqual(['running']);
    expect(frameStatusesBefore('failed')).toEqual(['running']);
    expect(frameStatusesBefore('canceled')).toEqual(['pending', 'running']);
  });

  it('never moves a frame again once it has finished, on any random walk of legal moves', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...FRAME_STATUSES), { maxLength: 20 }), (wanted) => {
        let status: FrameStatus = 'pending';
        let finished = false;
        for (const to of wanted) {
          if (!canMoveFrame(status, to)) continue;
          expect(finished).toBe(false);
          status = moveFrame(status, to);
          finished = status !== 'running';
        }
      }),
    );
  });
});

describe('the version state machine', () => {
  it('takes a pending or running version, and finishes only a running one', () => {
    expect(versionStatusesBefore('running')).toEqual(['pending', 'running']);
    expect(versionStatusesBefore('succeeded')).toEqual(['running']);
    expect(versionStatusesBefore('failed')).toEqual(['running']);
    expect(versionStatusesBefore('pending')).toEqual([]);
  });

  it('never moves a version again once it has finished, on any random walk of legal moves', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...VERSION_STATUSES), { maxLength: 20 }), (wanted) => {
        let status: VersionStatus = 'pending';
        let finished = false;
        for (const to of wanted) {
          if (!canMoveVersion(status, to)) continue;
          expect(finished).toBe(false);
          status = to;
          finished = status === 'succeeded' || status === 'failed';
        }
      }),
    );
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
