import { describe, expect, it } from 'vitest';
import { FramecastError } from '../../../functions/core/errors.ts';
import { jobRequestSchema } from '../../../functions/core/schemas.ts';
import { parse } from '../../../functions/core/validation.ts';

const valid = { shot: 'EP101_SH040', prompt: 'a building collapses', frames: { start: 1001, end: 1048 } };
const schema = jobRequestSchema(10_000);

function refusal(body: unknown): FramecastError {
  try {
    parse(schema, body);
  } catch (err) {
    if (err instanceof FramecastError) return err;
    throw err;
  }
  throw new Error('the request was accepted');
}

describe('the job request', () => {
  it('fills the documented defaults', () => {
    const r = parse(schema, valid);
    expect(r).toMatchObject({
      model: 'reference',
      width: 1024,
      height: 576,
      seedMode: 'per-frame',
      priority: 50,
    });
    expect(r.seed).toBeUndefined();
  });

  it.each([
    ['an unknown field', { ...valid, colour: 'red' }, 'body.colour'],
    ['a shot with a slash', { ...valid, shot: 'EP101/SH040' }, 'body.shot'],
    ['a shot of dots', { ...valid, shot: '..' }, 'body.shot'],
    ['a shot of 65 characters', { ...valid, shot: 'S'.repeat(65) }, 'body.shot'],
    ['an empty prompt', { ...valid, prompt: '' }, 'body.prompt'],
    ['a prompt over 4000 characters', { ...valid, prompt: 'p'.repeat(4001) }, 'body.prompt'],
    ['a prompt of spaces', { ...valid, prompt: '   ' }, 'body.prompt'],
    ['a prompt with a NUL', { ...valid, prompt: 'smoke\u0000fire' }, 'body.prompt'],
    [
      'a negative prompt with a control character',
      { ...valid, negativePrompt: 'blur\u001b[31m' },
      'body.negativePrompt',
    ],
    ['a width that is not a multiple of 8', { ...valid, width: 1000 + 4 }, 'body.width'],
    ['a height below 64', { ...valid, height: 56 }, 'body.height'],
    ['a width over 8192', { ...valid, width: 8200 }, 'body.width'],
    ['a width given as a string', { ...valid, width: '1024' }, 'body.width'],
    ['a reversed frame range', { ...valid, frames: { start: 1048, end: 1001 } }, 'body.frames.end'],
    ['a negative frame', { ...valid, frames: { start: -1, end: 10 } }, 'body.frames.start'],
    ['a fractional frame', { ...valid, frames: { start: 1.5, end: 10 } }, 'body.frames.start'],
    ['more frames than the limit', { ...valid, frames: { start: 1, end: 10_001 } }, 'body.frames.end'],
    ['a seed over 32 bits', { ...valid, seed: 2 ** 32 }, 'body.seed'],
    ['a negative seed', { ...valid, seed: -1 }, 'body.seed'],
    ['an unknown seed mode', { ...valid, seedMode: 'random' }, 'body.seedMode'],
    ['a priority over 100', { ...valid, priority: 101 }, 'body.priority'],
    ['a fractional priority', { ...valid, priority: 50.5 }, 'body.priority'],
    ['a startBy that is not a time', { ...valid, startBy: 'tomorrow' }, 'body.startBy'],
    ['a startBy without its time zone', { ...valid, startBy: '2030-01-01T00:00:00' }, 'body.startBy'],
    ['params that are not an object', { ...valid, params: [1, 2] }, 'body.params'],
    ['params over 16 KB', { ...valid, params: { x: 'y'.repeat(17_000) } }, 'body.params'],
    // What the table cannot hold is a 400 naming where, not a 500 from DynamoDB (found by test/faults/hostile).
    ['params with an empty key name', { ...valid, params: { x: { '': 1 } } }, 'body.params.x'],
    ['params with a number past 2^53', { ...valid, params: { x: [0.5, 1e20] } }, 'body.params.x.1'],
    ['params with a number nearer 0 than 1e-130', { ...valid, params: { cfg: 1e-200 } }, 'body.params.cfg'],
    ['a webhook without a url', { ...valid, webhook: { events: ['job.succeeded'] } }, 'body.webhook.url'],
    [
      'a webhook with an unknown event',
      { ...valid, webhook: { url: 'https://x.test', events: ['job.exploded'] } },
      'body.webhook.events.0',
    ],
    ['a missing shot', { prompt: 'p', frames: { start: 1, end: 1 } }, 'body.shot'],
    ['a body that is not an object', [valid], 'body'],
  ])('refuses %s and names the field', (_name, body, field) => {
    const err = refusal(body);
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_request');
    expect((err.details as { field: string }).field).toBe(field);
    expect(err.message.startsWith(field)).toBe(true);
  });

  it('keeps params the table can hold as they are sent', () => {
    const params = {
      steps: 30,
      cfg: 7.5,
      tiny: 1e-100,
      big: 2 ** 53 - 1,
      neg: -0.25,
      nested: { a: [null, true, 'x'] },
    };
    expect(parse(schema, { ...valid, params }).params).toEqual(params);
  });

  it('keeps tabs, newlines and any language in prompts', () => {
    const prompt = 'EP101 — 建物が崩れる\n\tdust, dusk 🌆';
    expect(parse(schema, { ...valid, prompt }).prompt).toBe(prompt);
  });

  it('takes exactly the frame limit', () => {
    expect(parse(schema, { ...valid, frames: { start: 1, end: 10_000 } }).frames).toEqual({
      start: 1,
      end: 10_000,
    });
  });
});
