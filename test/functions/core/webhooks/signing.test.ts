import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { generateSecret, isSecret, sign, verify } from '../../../../functions/core/webhooks/signing.ts';

// The vector of the reference JavaScript library's "sign function works" test
// (standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const body = JSON.stringify({
  type: 'frame.succeeded',
  timestamp: '2026-11-03T20:26:10.344Z',
  data: { jobId: 'job_01JD0000000000000000000000', shot: 'EP101_SH040', frame: 1001, note: 'café ✓' },
});

describe('signing by the Standard Webhooks specification', () => {
  it('reproduces the test vector of the specification', () => {
    const headers = sign({
      id: VECTOR.id,
      timestamp: VECTOR.timestamp,
      body: VECTOR.body,
      secrets: [VECTOR.secret],
    });
    // The published package agrees, so the vector above was copied right.
    expect(new Webhook(VECTOR.secret).sign(VECTOR.id, new Date(VECTOR.timestamp * 1000), VECTOR.body)).toBe(
      VECTOR.signature,
    );
    expect(headers).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': VECTOR.signature,
    });
  });

  it('takes the timestamp as a Date too, in whole seconds', () => {
    const at = new Date(VECTOR.timestamp * 1000 + 999);
    const headers = sign({ id: VECTOR.id, timestamp: at, body: VECTOR.body, secrets: [VECTOR.secret] });
    expect(headers['webhook-timestamp']).toBe('1614265330');
    expect(headers['webhook-signature']).toBe(VECTOR.signature);
  });

  it('is verified by the published standardwebhooks package', () => {
    const secret = generateSecret();
    const headers = sign({ id: 'evt_1', timestamp: new Date(), body, secrets: [secret] });
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('signs with both secrets during a rotation, so a receiver holding either one verifies', () => {
    const [oldSecret, newSecret] = [generateSecret(), generateSecret()];
    const headers = sign({ id: 'evt_2', timestamp: new Date(), body, secrets: [oldSecret, newSecret] });
    const entries = headers['webhook-signature'].split(' ');
    expect(entries).toHaveLength(2);
    expect(entries.every((entry) => /^v1,[A-Za-z0-9+/]{43}=$/.test(entry))).toBe(true);
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow(WebhookVerificationError);
  });

  it('lists a secret given twice only once', () => {
    const secret = generateSecret();
    const headers = sign({ id: 'evt_3', timestamp: 1_700_000_000, body, secrets: [secret, secret] });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(1);
  });

  it('is refused by the standardwebhooks package when the body or the timestamp was tampered with', () => {
    const secret = generateSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = sign({ id: 'evt_4', timestamp: now, body, secrets: [secret] });
    const wh = new Webhook(secret);
    expect(() => wh.verify(body.replace('1001', '1002'), headers)).toThrow(WebhookVerificationError);
    expect(() => wh.verify(`${body} `, headers)).toThrow(WebhookVerificationError);
    expect(() => wh.verify(body, { ...headers, 'webhook-timestamp': String(now + 1) })).toThrow(
      WebhookVerificationError,
    );
    expect(() => wh.verify(body, { ...headers, 'webhook-id': 'evt_5' })).toThrow(WebhookVerificationError);
  });
});

describe('secrets', () => {
  it('are whsec_ and the base64 of 32 random bytes, different every time', () => {
    const secrets = new Set(Array.from({ length: 50 }, generateSecret));
    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
      expect(isSecret(secret)).toBe(true);
    }
  });

  it('are refused without the prefix, with bad base64 or with a key shorter than 24 bytes', () => {
    const short = `whsec_${Buffer.alloc(16).toString('base64')}`;
    for (const bad of ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_not base64!', short, 'whsec_']) {
      expect(isSecret(bad)).toBe(false);
      expect(() => sign({ id: 'evt_6', timestamp: 1, body, secrets: [bad] })).toThrow(TypeError);
    }
  });

  it('never appear in the error of a refused secret', () => {
    const bad = `whsec_${Buffer.alloc(16, 7).toString('base64')}`;
    expect(() => sign({ id: 'evt_7', timestamp: 1, body, secrets: [bad] })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(bad.slice(6)) }),
    );
  });
});

describe('what sign refuses to sign', () => {
  const secrets = [VECTOR.secret];

  it('an id with a dot or whitespace, which would make the signed string ambiguous', () => {
    for (const id of ['', 'evt.1', 'evt 1', 'evt\r\n1']) {
      expect(() => sign({ id, timestamp: 1, body, secrets })).toThrow(TypeError);
    }
  });

  it('a timestamp in milliseconds, negative or fractional', () => {
    for (const timestamp of [Date.now(), -1, 1.5, Number.NaN, new Date(Number.NaN)]) {
      expect(() => sign({ id: 'evt_8', timestamp, body, secrets })).toThrow(RangeError);
    }
  });

  it('without any secret', () => {
    expect(() => sign({ id: 'evt_9', timestamp: 1, body, secrets: [] })).toThrow(TypeError);
  });
});

describe('verify, as a vendor would', () => {
  const now = new Date(VECTOR.timestamp * 1000);
  const vectorHeaders = {
    'webhook-id': VECTOR.id,
    'webhook-timestamp': '1614265330',
    'webhook-signature': VECTOR.signature,
  };

  it('accepts the specification test vector, with header names in any case', () => {
    const headers = Object.fromEntries(Object.entries(vectorHeaders).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verify({ headers, body: VECTOR.body, secrets: [VECTOR.secret], now })).toEqual({
      ok: true,
      id: VECTOR.id,
      timestamp: VECTOR.timestamp,
    });
  });

  it('accepts a signature made by the standardwebhooks package', () => {
    const secret = generateSecret();
    const at = new Date();
    const signature = new Webhook(secret).sign('evt_10', at, body);
    const headers = {
      'webhook-id': 'evt_10',
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signature,
    };
    expect(verify({ headers, body, secrets: [secret] }).ok).toBe(true);
  });

  it('accepts a header that also lists signatures it does not know', () => {
    const headers = { ...vectorHeaders, 'webhook-signature': `v1a,abcd v1,AAAA ${VECTOR.signature}` };
    expect(verify({ headers, body: VECTOR.body, secrets: [VECTOR.secret], now }).ok).toBe(true);
  });

  it('refuses a tampered body, id or timestamp, and a wrong secret', () => {
    const secrets = [VECTOR.secret];
    const no = { ok: false, reason: 'no matching signature' };
    expect(verify({ headers: vectorHeaders, body: `${VECTOR.body} `, secrets, now })).toEqual(no);
    expect(
      verify({ headers: { ...vectorHeaders, 'webhook-id': 'msg_other' }, body: VECTOR.body, secrets, now }),
    ).toEqual(no);
    expect(
      verify({
        headers: { ...vectorHeaders, 'webhook-timestamp': '1614265331' },
        body: VECTOR.body,
        secrets,
        now,
      }),
    ).toEqual(no);
    expect(verify({ headers: vectorHeaders, body: VECTOR.body, secrets: [generateSecret()], now })).toEqual(
      no,
    );
  });

  it('refuses a timestamp outside the tolerance, either way', () => {
    const args = { headers: vectorHeaders, body: VECTOR.body, secrets: [VECTOR.secret] };
    expect(verify({ ...args, now: new Date((VECTOR.timestamp + 301) * 1000) })).toEqual({
      ok: false,
      reason: 'timestamp too old',
    });
    expect(verify({ ...args, now: new Date((VECTOR.timestamp - 301) * 1000) })).toEqual({
      ok: false,
      reason: 'timestamp too new',
    });
    expect(verify({ ...args, now: new Date((VECTOR.timestamp + 300) * 1000) }).ok).toBe(true);
  });

  it('refuses missing or malformed headers', () => {
    const args = { body: VECTOR.body, secrets: [VECTOR.secret], now };
    expect(verify({ ...args, headers: { ...vectorHeaders, 'webhook-signature': undefined } }).ok).toBe(false);
    expect(verify({ ...args, headers: { ...vectorHeaders, 'webhook-timestamp': '1614265330.5' } })).toEqual({
      ok: false,
      reason: 'invalid webhook-timestamp',
    });
    expect(verify({ ...args, headers: { ...vectorHeaders, 'webhook-signature': 'v1,' } }).ok).toBe(false);
  });
});
