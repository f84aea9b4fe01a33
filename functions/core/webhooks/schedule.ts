/**
 * When a failed webhook delivery is tried again. All times are in seconds.
 *
 * The nominal schedule is the Standard Webhooks example cut after its seventh retry: about 27.6 hours
 * from the first attempt to the last, so a vendor that is down for a day still gets every event.
 *
 * | attempt | nominal delay before it | nominal time since the first attempt |
 * |---|---|---|
 * | 1 | immediately | 0:00:00 |
 * | 2 | 5 s | 0:00:05 |
 * | 3 | 5 min | 0:05:05 |
 * | 4 | 30 min | 0:35:05 |
 * | 5 | 2 h | 2:35:05 |
 * | 6 | 5 h | 7:35:05 |
 * | 7 | 10 h | 17:35:05 |
 * | 8 | 10 h | 27:35:05 |
 *
 * Each delay is jittered by up to ±20 % around its nominal value. Full or equal jitter would shorten the
 * schedule by a half or a quarter on average and so no longer span a day; a symmetric jitter keeps the
 * mean where the table says and still spreads the retries of a burst of events over a 40 % window.
 */

/** Nominal delay before attempt `i + 1` (the first attempt goes at once). */
export const RETRY_SCHEDULE: readonly number[] = [
  0,
  5,
  5 * 60,
  30 * 60,
  2 * 3600,
  5 * 3600,
  10 * 3600,
  10 * 3600,
];

export const MAX_ATTEMPTS = RETRY_SCHEDULE.length;

export const JITTER = 0.2;

/**
 * No delay is longer than 12 hours: that is the longest an SQS message can be kept invisible
 * (ChangeMessageVisibility), the natural way to hold a delivery until its next attempt. It also bounds
 * what a receiver's Retry-After can ask for.
 */
export const MAX_DELAY_SECONDS = 12 * 3600;

/** Sum of the nominal delays: the time from the first attempt to the last. */
export const NOMINAL_SPAN_SECONDS = RETRY_SCHEDULE.reduce((sum, delay) => sum + delay, 0);

/**
 * Seconds to wait before the next attempt after attempt number `attempt` (1-based) failed, or
 * `undefined` when that was the last one. `attempt` 0 (nothing sent yet) gives 0.
 *
 * `retryAfterSeconds` is the receiver's Retry-After (429, 503). It can lengthen the wait, never shorten it
 * below the schedule: a receiver answering "Retry-After: 1" during an outage would otherwise use up all
 * its attempts in seconds. It is capped at {@link MAX_DELAY_SECONDS}.
 */
export function nextAttemptDelay(
  attempt: number,
  random: () => number = Math.random,
  retryAfterSeconds?: number,
): number | undefined {
  if (!Number.isSafeInteger(attempt) || attempt < 0) {
    throw new RangeError(`attempt must be a whole number from 0, not ${attempt}`);
  }
  const nominal = RETRY_SCHEDULE[attempt];
  if (nominal === undefined) return undefined;
  const r = Math.min(Math.max(random(), 0), 1);
  const jittered = Math.round(nominal * (1 - JITTER + 2 * JITTER * r));
  const asked =
    retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0
      ? Math.ceil(retryAfterSeconds)
      : 0;
  return Math.min(Math.max(jittered, asked), MAX_DELAY_SECONDS);
}

/**
 * A Retry-After header in seconds from `now`: either delay-seconds or an HTTP-date (RFC 9110 10.2.3).
 * A date in the past gives 0; anything unreadable gives `undefined`. Not clamped: see nextAttemptDelay.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  // An HTTP-date always starts with the weekday; this keeps Date.parse from guessing at arbitrary text.
  if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
  // The asctime form carries no zone, and Date.parse would read it as local time; HTTP means GMT.
  const at = Date.parse(/\d{4}$/.test(text) ? `${text} GMT` : text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
