import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENDPOINT_ID, EVENT_ID, JOB_ID, newEventId, newJobId, TENANT } from '../../../functions/core/ids.ts';
import {
  chunkMessageSchema,
  encodeChunk,
  encodeEvent,
  encodePlan,
  encodeWindow,
  eventMessageSchema,
  parseFrameQueueMessage,
  parseMessage,
  planMessageSchema,
  versionsOf,
} from '../../../functions/core/messages.ts';

const jobId = newJobId();
const eventId = newEventId();
const plan = { v: 1, jobId, tenant: 'acme' };
const chunk = { v: 1, jobId, tenant: 'acme', frames: [1001, 1002, 1003] };
const event = { v: 1, eventId, jobId, tenant: 'acme' };

const reasonOf = (parsed: ReturnType<typeof parseMessage>) => (parsed.ok ? undefined : parsed.reason);
const body = (value: unknown) => JSON.stringify(value);

describe('parsing a queue message', () => {
  it('reads a plan, a chunk and an event of version 1', () => {
    expect(parseMessage(planMessageSchema, body(plan))).toEqual({ ok: true, message: plan });
    expect(parseMessage(chunkMessageSchema, body(chunk))).toEqual({ ok: true, message: chunk });
    const retry = { ...event, endpoint: 'job', attempt: 3, notBefore: '2030-01-02T03:04:05.678Z' };
    expect(parseMessage(eventMessageSchema, body(retry))).toEqual({ ok: true, message: retry });
  });

  it('refuses a body that is not JSON, or not a JSON object, saying so', () => {
    expect(reasonOf(parseMessage(planMessageSchema, '{"v": 1, "jobId": '))).toMatch(/^not JSON: /);
    expect(reasonOf(parseMessage(planMessageSchema, ''))).toMatch(/^not JSON: /);
    for (const value of [null, 1, 'plan', [plan]])
      expect(reasonOf(parseMessage(planMessageSchema, body(value)))).toBe('not a JSON object');
  });

  it('writes a dead letter as a v3 chunk or window, which says why its frames failed, and reads it back', () => {
    const deadLetter = { reason: 'injected failure: frame 1002', at: '2026-12-01T02:00:00.000Z' };
    const written = encodeChunk({ jobId, tenant: 'acme', frames: [1002], deadLetter });
    expect(JSON.parse(written)).toEqual({ v: 3, jobId, tenant: 'acme', frames: [1002], deadLetter });
    expect(parseFrameQueueMessage(written)).toEqual({
      ok: true,
      message: { kind: 'chunk', v: 3, jobId, tenant: 'acme', frames: [1002], deadLetter },
    });
    // A dead letter must say when and why: without them it is refused, as any malformed message.
    expect(reasonOf(parseMessage(chunkMessageSchema, body({ ...chunk, v: 3 })))).toMatch(/^deadLetter: /);
    expect(
      reasonOf(
        parseMessage(chunkMessageSchema, body({ ...chunk, v: 3, deadLetter: { ...deadLetter, at: 'now' } })),
      ),
    ).toMatch(/^deadLetter\.at: must be an ISO 8601 time/);
    // A plain chunk is still v1.
    expect(JSON.parse(encodeChunk({ jobId, tenant: 'acme', frames: [1] })).v).toBe(1);
    // A chained window that failed is dead-lettered as a v3 window.
    const window = encodeWindow({ jobId, tenant: 'acme', window: 2, deadLetter });
    expect(parseFrameQueueMessage(window)).toEqual({
      ok: true,
      message: { kind: 'window', v: 3, jobId, tenant: 'acme', window: 2, deadLetter },
    });
    expect(JSON.parse(encodeWindow({ jobId, tenant: 'acme', window: 2 })).v).toBe(1);
  });

  it('refuses a message of a version it does not read, naming the version', () => {
    expect(reasonOf(parseMessage(planMessageSchema, body({ ...plan, v: 2 })))).toBe(
      'unknown version 2; this code reads v1',
    );
    expect(reasonOf(parseMessage(planMessageSchema, body({ ...plan, v: 0 })))).toBe(
      'unknown version 0; this code reads v1',
    );
    expect(reasonOf(parseMessage(chunkMessageSchema, body({ ...chunk, v: '1' })))).toBe(
      'unknown version "1"; this code reads v1, v2, v3',
    );
    expect(reasonOf(parseMessage(chunkMessageSchema, body({ ...chunk, v: 4 })))).toBe(
      'unknown version 4; this code reads v1, v2, v3',
    );
    const { v: _, ...unversioned } = event;
    expect(reasonOf(parseMessage(eventMessageSchema, body(unversioned)))).toBe(
      'no version (v); this code reads v1',
    );
    expect(versionsOf(planMessageSchema)).toEqual([1]);
  });

  it('refuses missing fields, naming them', () => {
    expect(reasonOf(parseMessage(planMessageSchema, body({ v: 1, jobId })))).toMatch(/^tenant: /);
    expect(reasonOf(parseMessage(chunkMessageSchema, body({ v: 1, jobId, tenant: 'acme' })))).toMatch(
      /^frames: /,
    );
    expect(reasonOf(parseMessage(eventMessageSchema, body({ v: 1, jobId, tenant: 'acme' })))).toMatch(
      /^eventId: /,
    );
  });

  it.each([
    ['a job id of the wrong shape', { ...chunk, jobId: 'job_1' }, /^jobId: must be a job id/],
    ['a number for a job id', { ...chunk, jobId: 42 }, /^jobId: /],
    ['a tenant with capitals', { ...chunk, tenant: 'Acme' }, /^tenant: must be a tenant/],
    ['an empty chunk', { ...chunk, frames: [] }, /^frames: must name a frame/],
    ['a negative frame', { ...chunk, frames: [1, -1] }, /^frames\.1: must be 0 or more/],
    ['a fractional frame', { ...chunk, frames: [1.5] }, /^frames\.0: /],
    ['a frame as a string', { ...chunk, frames: ['1001'] }, /^frames\.0: /],
    ['frames that are not a list', { ...chunk, frames: 1001 }, /^frames: /],
  ])('refuses a chunk with %s', (_, message, reason) => {
    expect(reasonOf(parseMessage(chunkMessageSchema, body(message)))).toMatch(reason);
  });

  it.each([
    ['an event id of the wrong shape', { ...event, eventId: jobId }, /^eventId: must be an event id/],
    ['an endpoint that is not one', { ...event, endpoint: 'https://x.test' }, /^endpoint: /],
    ['attempt 0', { ...event, attempt: 0 }, /^attempt: must be 1 or more/],
    ['a notBefore that is not a time', { ...event, notBefore: 'tomorrow' }, /^notBefore: /],
    ['manual as a string', { ...event, manual: 'yes' }, /^manual: /],
  ])('refuses an event message with %s', (_, message, reason) => {
    expect(reasonOf(parseMessage(eventMessageSchema, body(message)))).toMatch(reason);
  });

  it('strips fields it does not know, so a newer producer does not stop an older consumer', () => {
    const newer = { ...chunk, priority: 90, trace: { id: 'x' } };
    expect(parseMessage(chunkMessageSchema, body(newer))).toEqual({ ok: true, message: chunk });
  });

  it('reads the same body twice alike: a duplicate is a message like any other', () => {
    const twice = [body(chunk), body(chunk)].map((b) => parseMessage(chunkMessageSchema, b));
    expect(twice[0]).toEqual({ ok: true, message: chunk });
    expect(twice[1]).toEqual(twice[0]);
  });

  it('never throws, whatever the body', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json().map(String)), (text) => {
        const parsed = parseMessage(eventMessageSchema, text);
        expect(parsed.ok || parsed.reason.length > 0).toBe(true);
      }),
    );
  });
});

describe('encoding a queue message', () => {
  it('writes the current version, so producers never write it by hand', () => {
    expect(JSON.parse(encodePlan({ jobId, tenant: 'acme' }))).toEqual(plan);
    expect(JSON.parse(encodeChunk({ jobId, tenant: 'acme', frames: [1001, 1002, 1003] }))).toEqual(chunk);
    expect(JSON.parse(encodeEvent({ eventId, jobId, tenant: 'acme' }))).toEqual(event);
  });

  it('refuses to send a malformed message: a producer bug fails where it is made, not on the queue', () => {
    expect(() => encodePlan({ jobId: 'job_1', tenant: 'acme' })).toThrow(
      /malformed plan message: jobId: must be a job id/,
    );
    expect(() => encodeChunk({ jobId, tenant: 'acme', frames: [] })).toThrow(/malformed chunk message/);
    expect(() => encodeEvent({ eventId, jobId, tenant: 'acme', attempt: 0 })).toThrow(
      /malformed event message: attempt/,
    );
  });

  const ids = {
    jobId: fc.stringMatching(JOB_ID),
    eventId: fc.stringMatching(EVENT_ID),
    tenant: fc.stringMatching(TENANT),
  };
  const isoTime = fc
    .date({
      min: new Date('2000-01-01T00:00:00Z'),
      max: new Date('2100-01-01T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString());
  const arbitraries = {
    plan: fc.record({ jobId: ids.jobId, tenant: ids.tenant }),
    chunk: fc.record({
      jobId: ids.jobId,
      tenant: ids.tenant,
      frames: fc.array(fc.nat({ max: 9_999_999 }), { minLength: 1, maxLength: 50 }),
    }),
    event: fc.record(
      {
        eventId: ids.eventId,
        jobId: ids.jobId,
        tenant: ids.tenant,
        endpoint: fc.oneof(fc.constant('job'), fc.stringMatching(ENDPOINT_ID)),
        attempt: fc.integer({ min: 1, max: 1000 }),
        notBefore: isoTime,
        manual: fc.boolean(),
      },
      { requiredKeys: ['eventId', 'jobId', 'tenant'] },
    ),
  };

  it('parses every encoded plan back to itself', () => {
    fc.assert(
      fc.property(arbitraries.plan, (m) => {
        expect(parseMessage(planMessageSchema, encodePlan(m))).toEqual({ ok: true, message: { v: 1, ...m } });
      }),
    );
  });

  it('parses every encoded chunk back to itself', () => {
    fc.assert(
      fc.property(arbitraries.chunk, (m) => {
        expect(parseMessage(chunkMessageSchema, encodeChunk(m))).toEqual({
          ok: true,
          message: { v: 1, ...m },
        });
      }),
    );
  });

  it('parses every encoded event message back to itself', () => {
    fc.assert(
      fc.property(arbitraries.event, (m) => {
        expect(parseMessage(eventMessageSchema, encodeEvent(m))).toEqual({
          ok: true,
          message: { v: 1, ...m },
        });
      }),
    );
  });
});

describe('a frame queue message', () => {
  const window = { v: 1, jobId, tenant: 'acme', window: 3 };

  it('is a chunk when it names frames, a window when it names a window', () => {
    expect(parseFrameQueueMessage(body(chunk))).toEqual({ ok: true, message: { kind: 'chunk', ...chunk } });
    expect(parseFrameQueueMessage(body(window))).toEqual({
      ok: true,
      message: { kind: 'window', ...window },
    });
    expect(parseFrameQueueMessage(encodeWindow({ jobId, tenant: 'acme', window: 0 }))).toMatchObject({
      ok: true,
      message: { kind: 'window', window: 0 },
    });
  });

  it('reads a message naming both as a chunk, so a field added to chunks later cannot turn one into a window', () => {
    expect(parseFrameQueueMessage(body({ ...chunk, window: 2 }))).toEqual({
      ok: true,
      message: { kind: 'chunk', ...chunk },
    });
  });

  it('refuses a malformed window or chunk with the reason of the kind it looks like', () => {
    expect(reasonOf(parseFrameQueueMessage(body({ ...window, window: -1 })))).toMatch(/^window: /);
    expect(reasonOf(parseFrameQueueMessage(body({ ...window, window: 1.5 })))).toMatch(/^window: /);
    expect(reasonOf(parseFrameQueueMessage(body({ ...window, v: 4 })))).toBe(
      'unknown version 4; this code reads v1, v2, v3',
    );
    // A re-roll (v2) must say what to make.
    expect(reasonOf(parseFrameQueueMessage(body({ ...window, v: 2 })))).toMatch(/^reroll: /);
    expect(reasonOf(parseFrameQueueMessage(body({ v: 1, jobId, tenant: 'acme' })))).toMatch(/^frames: /);
    expect(reasonOf(parseFrameQueueMessage('{"v": 1, "window": '))).toMatch(/^not JSON: /);
  });

  it('carries a re-roll as version 2 of a chunk or window, and an ordinary chunk or window as version 1', () => {
    const reroll = { version: 2, seed: 42, params: { strength: 0.5 } };
    const chunkBody = JSON.parse(encodeChunk({ jobId, tenant: 'acme', frames: [7], reroll }));
    expect(chunkBody).toMatchObject({ v: 2, frames: [7], reroll });
    const windowBody = JSON.parse(encodeWindow({ jobId, tenant: 'acme', window: 3, reroll }));
    expect(windowBody).toMatchObject({ v: 2, window: 3, reroll });
    expect(JSON.parse(encodeWindow({ jobId, tenant: 'acme', window: 3 })).v).toBe(1);
    const parsed = parseFrameQueueMessage(JSON.stringify(windowBody));
    expect(parsed).toMatchObject({ ok: true, message: { kind: 'window', window: 3, reroll } });
    // A re-roll makes one frame of a chunk job, and never version 1 (the first generation).
    expect(() => encodeChunk({ jobId, tenant: 'acme', frames: [7, 8], reroll })).toThrow(/one frame/);
    expect(() =>
      encodeChunk({ jobId, tenant: 'acme', frames: [7], reroll: { ...reroll, version: 1 } }),
    ).toThrow(/version/);
  });

  it('is never encoded malformed', () => {
    expect(() => encodeWindow({ jobId, tenant: 'acme', window: -1 })).toThrow(/malformed window/);
    expect(() => encodeWindow({ jobId: 'job_1', tenant: 'acme', window: 1 })).toThrow(/jobId/);
  });
});
