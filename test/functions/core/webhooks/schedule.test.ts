import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JITTER,
  MAX_ATTEMPTS,
  MAX_DELAY_SECONDS,
  NOMINAL_SPAN_SECONDS,
  nextAttemptDelay,
  parseRetryAfter,
  RETRY_SCHEDULE,
} from '../../../../functions/core/webhooks/schedule.ts';

const HOUR = 3600;
const middle = () => 0.5;
const attemptsWithDelay = fc.integer({ min: 0, max: MAX_ATTEMPTS - 1 });
const unit = fc.double({ min: 0, max: 1, noNaN: true });

describe('the nominal retry schedule', () => {
  it('is the documented table: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(RETRY_SCHEDULE).toEqual([0, 5, 300, 1800, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]);
    expect(MAX_ATTEMPTS).toBe(8);
  });

  it('never shortens from one attempt to the next', () => {
    for (let i = 1; i < RETRY_SCHEDULE.length; i++) {
      expect(RETRY_SCHEDULE[i]!).toBeGreaterThanOrEqual(RETRY_SCHEDULE[i - 1]!);
    }
  });

  it('spans about a day, 24 to 30 hours', () => {
    expect(NOMINAL_SPAN_SECONDS).toBe(99_305);
    expect(NOMINAL_SPAN_SECONDS).toBeGreaterThanOrEqual(24 * HOUR);
    expect(NOMINAL_SPAN_SECONDS).toBeLessThanOrEqual(30 * HOUR);
  });

  it('is what nextAttemptDelay gives with the jitter in the middle', () => {
    const delays = Array.from({ length: MAX_ATTEMPTS }, (_, attempt) => nextAttemptDelay(attempt, middle));
    expect(delays).toEqual(RETRY_SCHEDULE);
  });
});

describe('nextAttemptDelay', () => {
  it('sends the first attempt at once', () => {
    fc.assert(fc.property(unit, (r) => nextAttemptDelay(0, () => r) === 0));
  });

  it('gives up after the last attempt', () => {
    expect(nextAttemptDelay(MAX_ATTEMPTS, middle)).toBeUndefined();
    expect(nextAttemptDelay(MAX_ATTEMPTS + 5, middle)).toBeUndefined();
    expect(nextAttemptDelay(MAX_ATTEMPTS - 1, middle)).toBe(10 * HOUR);
  });

  it('refuses an attempt number that is negative or not whole', () => {
    for (const attempt of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => nextAttemptDelay(attempt)).toThrow(RangeError);
    }
  });

  it('keeps the jitter within ±20 % of the nominal delay, in whole seconds', () => {
    fc.assert(
      fc.property(attemptsWithDelay, unit, (attempt, r) => {
        const nominal = RETRY_SCHEDULE[attempt]!;
        const delay = nextAttemptDelay(attempt, () => r)!;
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(nominal * (1 - JITTER)));
        expect(delay).toBeLessThanOrEqual(Math.min(Math.ceil(nominal * (1 + JITTER)), MAX_DELAY_SECONDS));
      }),
    );
  });

  it('reaches both ends of the jitter window', () => {
    expect(nextAttemptDelay(4, () => 0)).toBe(0.8 * 2 * HOUR);
    expect(nextAttemptDelay(4, () => 1)).toBe(1.2 * 2 * HOUR);
  });

  it('survives a random source that strays outside [0, 1]', () => {
    expect(nextAttemptDelay(1, () => -3)).toBe(4);
    expect(nextAttemptDelay(1, () => 7)).toBe(6);
  });

  it('spans 22 to 33 hours in total whatever the jitter', () => {
    fc.assert(
      fc.property(fc.array(unit, { minLength: MAX_ATTEMPTS, maxLength: MAX_ATTEMPTS }), (rs) => {
        const total = rs.reduce((sum, r, attempt) => sum + nextAttemptDelay(attempt, () => r)!, 0);
        expect(total).toBeGreaterThanOrEqual(0.8 * NOMINAL_SPAN_SECONDS - MAX_ATTEMPTS);
        expect(total).toBeLessThanOrEqual(1.2 * NOMINAL_SPAN_SECONDS + MAX_ATTEMPTS);
      }),
    );
  });

  it('never asks SQS to hold a message longer than 12 hours', () => {
    fc.assert(
      fc.property(
        attemptsWithDelay,
        unit,
        fc.option(fc.double({ min: 0, max: 1e12, noNaN: true })),
        (a, r, ra) => {
          expect(nextAttemptDelay(a, () => r, ra ?? undefined)!).toBeLessThanOrEqual(MAX_DELAY_SECONDS);
        },
      ),
    );
  });
});

describe('Retry-After', () => {
  it('lengthens the wait to what the receiver asked', () => {
    expect(nextAttemptDelay(1, middle, 120)).toBe(120);
    expect(nextAttemptDelay(2, middle, 3 * HOUR)).toBe(3 * HOUR);
    expect(nextAttemptDelay(1, middle, 0.2)).toBe(5);
  });

  it('never shortens the schedule', () => {
    fc.assert(
      fc.property(attemptsWithDelay, unit, fc.nat(MAX_DELAY_SECONDS), (attempt, r, retryAfter) => {
        const plain = nextAttemptDelay(attempt, () => r)!;
        const asked = nextAttemptDelay(attempt, () => r, retryAfter)!;
        expect(asked).toBe(Math.max(plain, retryAfter));
      }),
    );
  });

  it('is clamped to 12 hours, and ignored when negative or not a number', () => {
    expect(nextAttemptDelay(1, middle, 365 * 24 * HOUR)).toBe(MAX_DELAY_SECONDS);
    expect(nextAttemptDelay(1, middle, Number.POSITIVE_INFINITY)).toBe(5);
    expect(nextAttemptDelay(1, middle, -60)).toBe(5);
    expect(nextAttemptDelay(1, middle, Number.NaN)).toBe(5);
  });

  it('does not bring back an attempt after the last one', () => {
    expect(nextAttemptDelay(MAX_ATTEMPTS, middle, 60)).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-03T20:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP-date in each of the three formats HTTP allows', () => {
    expect(parseRetryAfter('Tue, 03 Nov 2026 20:02:00 GMT', now)).toBe(120);
    expect(parseRetryAfter('Tuesday, 03-Nov-26 20:02:00 GMT', now)).toBe(120);
    expect(parseRetryAfter('Tue Nov  3 20:02:00 2026', now)).toBe(120);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Mon, 02 Nov 2026 20:00:00 GMT', now)).toBe(0);
  });

  it('gives nothing for what it cannot read', () => {
    for (const value of [undefined, '', 'soon', '-5', '1.5', '2026-11-03T20:02:00Z', '12 parsecs']) {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    }
  });
});
