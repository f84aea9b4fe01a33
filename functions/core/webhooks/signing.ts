import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, symmetric scheme `v1`), so a vendor can
 * verify our events with any Standard Webhooks library instead of code written for Framecast.
 */

export type WebhookHeaders = Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string>;

const SECRET_PREFIX = 'whsec_';
// The spec asks for 24 to 64 random bytes; we generate 32.
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Ids and timestamps are joined with '.', so a '.' in either would let two different messages share
// one signed string; whitespace would break the space-separated signature list and the headers.
const MESSAGE_ID = /^[^\s.]{1,256}$/;
// A millisecond timestamp passed by mistake would be a date thousands of years away that every
// receiver rejects as "too new"; catching it here names the real mistake.
const MAX_SECONDS = 1e11;
const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** A new signing secret: `whsec_` and the base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** Whether `secret` is a `whsec_` secret we can sign with (for validating stored or rotated secrets). */
export function isSecret(secret: string): boolean {
  return secretKey(secret) !== undefined;
}

function secretKey(secret: string): Buffer | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded)) return undefined;
  const key = Buffer.from(encoded, 'base64');
  return key.length >= MIN_KEY_BYTES && key.length <= MAX_KEY_BYTES ? key : undefined;
}

function keyOf(secret: string): Buffer {
  const key = secretKey(secret);
  // The secret itself never goes into the message: it would end up in logs.
  if (!key) throw new TypeError(`webhook secret must be ${SECRET_PREFIX} and base64 of 24 to 64 bytes`);
  return key;
}

function toSeconds(timestamp: Date | number): number {
  const seconds = timestamp instanceof Date ? Math.floor(timestamp.getTime() / 1000) : timestamp;
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds >= MAX_SECONDS) {
    throw new RangeError('webhook timestamp must be a Date or whole unix seconds');
  }
  return seconds;
}

function digest(key: Buffer, id: string, seconds: number, body: string): Buffer {
  return createHmac('sha256', key).update(`${id}.${seconds}.${body}`, 'utf8').digest();
}

/**
 * The three Standard Webhooks headers for one delivery attempt. With two secrets (rotation), the
 * signature header carries one `v1,` entry per secret, so receivers holding either secret verify.
 * `body` must be exactly the bytes that are sent.
 */
export function sign(input: {
  id: string;
  timestamp: Date | number;
  body: string;
  secrets: readonly string[];
}): WebhookHeaders {
  if (!MESSAGE_ID.test(input.id))
    throw new TypeError('webhook id must be 1-256 characters without "." or spaces');
  if (input.secrets.length === 0) throw new TypeError('at least one webhook secret is needed to sign');
  const seconds = toSeconds(input.timestamp);
  const signatures = [...new Set(input.secrets)].map(
    (secret) => `v1,${digest(keyOf(secret), input.id, seconds, input.body).toString('base64')}`,
  );
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(seconds),
    'webhook-signature': signatures.join(' '),
  };
}

export type VerifyResult = { ok: true; id: string; timestamp: number } | { ok: false; reason: string };

/**
 * Checks a received delivery the way a vendor would (for our tests and CLI): the timestamp within
 * `toleranceSeconds` of `now`, and any `v1` signature matching any of `secrets`. Header names are
 * case-insensitive.
 */
export function verify(input: {
  headers: Readonly<Record<string, string | undefined>>;
  body: string;
  secrets: readonly string[];
  now?: Date;
  toleranceSeconds?: number;
}): VerifyResult {
  const header = (name: keyof WebhookHeaders) =>
    Object.entries(input.headers).find(([key]) => key.toLowerCase() === name)?.[1];
  const id = header('webhook-id');
  const timestamp = header('webhook-timestamp');
  const signature = header('webhook-signature');
  if (!id || !timestamp || !signature) return { ok: false, reason: 'missing webhook headers' };
  if (!MESSAGE_ID.test(id)) return { ok: false, reason: 'invalid webhook-id' };
  if (!/^\d{1,11}$/.test(timestamp)) return { ok: false, reason: 'invalid webhook-timestamp' };

  const seconds = Number(timestamp);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (now - seconds > tolerance) return { ok: false, reason: 'timestamp too old' };
  if (seconds - now > tolerance) return { ok: false, reason: 'timestamp too new' };

  const offered = signature
    .split(' ')
    .filter((entry) => entry.startsWith('v1,') && BASE64.test(entry.slice(3)))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  for (const secret of input.secrets) {
    const expected = digest(keyOf(secret), id, seconds, input.body);
    if (
      offered.some(
        (candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected),
      )
    ) {
      return { ok: true, id, timestamp: seconds };
    }
  }
  return { ok: false, reason: 'no matching signature' };
}
