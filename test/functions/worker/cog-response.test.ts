import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CogJsonReader,
  CogResponseError,
  HandedFile,
  readCogJson,
} from '../../../functions/worker/cog-response.ts';

/** Feeds `text` to a reader in pieces cut at `cuts`, and parses the end. */
function read(text: string, cuts: readonly number[] = [], maxBytes = 1 << 24): unknown {
  const bytes = Buffer.from(text);
  const reader = new CogJsonReader({ maxBytes });
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= at || cut >= bytes.length) continue;
    reader.push(bytes.subarray(at, cut));
    at = cut;
  }
  reader.push(bytes.subarray(at));
  return reader.end();
}

const dataUrl = (bytes: Buffer, type = 'image/png') => `data:${type};base64,${bytes.toString('base64')}`;

describe('reading a Cog answer as it streams in', () => {
  it('decodes a data URL output into its bytes and keeps everything else as JSON gives it', () => {
    const file = randomBytes(10_000);
    const answer = {
      id: 'job_T-1-1',
      status: 'succeeded',
      output: dataUrl(file),
      metrics: { predict_time: 0.25 },
      logs: 'say "data:" \\ and "data:x" are text, not files',
      error: null,
    };
    const parsed = read(JSON.stringify(answer)) as typeof answer & { output: Uint8Array };
    expect(Buffer.from(parsed.output)).toEqual(file);
    expect(parsed).toMatchObject({ status: 'succeeded', metrics: { predict_time: 0.25 }, error: null });
    expect(parsed.logs).toBe(answer.logs);
  });

  it('gives the same answer however the bytes are cut into chunks', () => {
    const files = [randomBytes(700), randomBytes(1), randomBytes(0), randomBytes(301)];
    const text = JSON.stringify({
      status: 'succeeded',
      output: files.map((f) => dataUrl(f)),
      short: 'dat',
      url: 'https://example.com/out.png',
      'data:': 'a key that looks like a data URL',
    }).replaceAll('/', '\\/'); // some JSON writers escape every "/"
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), { maxLength: 40 }), (cuts) => {
        const parsed = read(text, cuts) as { output: Uint8Array[]; short: string; url: string };
        expect(parsed.output.map((f) => Buffer.from(f))).toEqual(files);
        expect(parsed.short).toBe('dat');
        expect(parsed.url).toBe('https://example.com/out.png');
      }),
      { numRuns: 200 },
    );
  });

  it('hands the same output files on, at their places, however the bytes are cut into chunks', () => {
    const files = [randomBytes(700), randomBytes(1), randomBytes(0), randomBytes(301)];
    const echoed = randomBytes(50);
    const text = JSON.stringify({
      'data:': 'a key that looks like a data URL',
      input: { context: [dataUrl(echoed)], output: dataUrl(echoed) },
      outputs: [dataUrl(echoed)],
      metrics: { nested: [{ output: dataUrl(echoed) }] },
      output: files.map((f) => dataUrl(f)),
      status: 'succeeded',
    }).replaceAll('/', '\\/');
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), { maxLength: 40 }), (cuts) => {
        const handed = new Map<number, Buffer>();
        const reader = new CogJsonReader({
          maxBytes: 1 << 24,
          onFile: async (file, index) => {
            handed.set(index, Buffer.from(file));
          },
        });
        const bytes = Buffer.from(text);
        let at = 0;
        for (const cut of [...cuts, bytes.length].sort((a, b) => a - b)) {
          while (at < cut) {
            at += reader.push(bytes.subarray(at, cut));
            void reader.handOn();
          }
        }
        const parsed = reader.end() as { output: unknown[]; input: { output: Uint8Array } };
        expect([...handed.keys()].sort()).toEqual([0, 1, 2, 3]);
        for (const [i, f] of files.entries()) expect(handed.get(i)).toEqual(f);
        expect(parsed.output).toEqual(files.map((_, i) => new HandedFile(i)));
        expect(Buffer.from(parsed.input.output)).toEqual(echoed);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes a data URL that is not base64 (percent-encoded)', () => {
    const parsed = read(JSON.stringify({ output: 'data:text/plain,a%20b%00' })) as { output: Uint8Array };
    expect(Buffer.from(parsed.output)).toEqual(Buffer.from('a b\0', 'latin1'));
  });

  it('refuses a file larger than allowed, and an answer that ends inside a string', () => {
    expect(() => read(JSON.stringify({ output: dataUrl(randomBytes(600_000)) }), [], 500_000)).toThrow(
      CogResponseError,
    );
    expect(() => read('{"output":"data:image/png;base64,AAAA')).toThrow(/ended inside a string/);
  });

  it('never holds the base64 text of a file whole: the pending text stays under a decode block', () => {
    const file = randomBytes(3 * 1024 * 1024);
    const reader = new CogJsonReader({ maxBytes: 1 << 24 });
    const bytes = Buffer.from(JSON.stringify({ output: dataUrl(file) }));
    let most = 0;
    for (let at = 0; at < bytes.length; at += 64 * 1024) {
      reader.push(bytes.subarray(at, at + 64 * 1024));
      most = Math.max(most, (reader as unknown as { pendingBytes: number }).pendingBytes);
    }
    expect(Buffer.from((reader.end() as { output: Uint8Array }).output).equals(file)).toBe(true);
    // The text of this file is 4 MB; at most one block of it (256 KB) and a chunk wait to be decoded.
    expect(most).toBeLessThan(256 * 1024 + 64 * 1024);
  });

  it('hands each file on as it is decoded, and decodes the next only once the last one is taken', async () => {
    const files = [randomBytes(5000), randomBytes(3), randomBytes(70_000)];
    const context = randomBytes(200);
    // All of the answer in one chunk: the reader still stops at each file's end. Cog echoes the input
    // first, its data URLs too: they are no output, and stay in the answer.
    const answer = Buffer.from(
      JSON.stringify({
        input: { context: [dataUrl(context)], num_frames: 3 },
        output: files.map((f) => dataUrl(f)),
        status: 'succeeded',
        metrics: { predict_time: 1 },
      }),
    );
    const handed: number[] = [];
    const parsed = (await readCogJson(
      (async function* () {
        yield answer;
      })(),
      {
        maxBytes: 1 << 24,
        onFile: async (file, index) => {
          // Each handed after the one before it was taken, never beside it.
          expect(Buffer.from(file).equals(files[index]!)).toBe(true);
          expect(handed).toEqual(Array.from({ length: index }, (_, i) => i));
          await new Promise((r) => setTimeout(r, 5));
          handed.push(index);
        },
      },
    )) as { input: { context: Uint8Array[] }; output: unknown[]; status: string };
    expect(handed).toEqual([0, 1, 2]);
    expect(parsed.status).toBe('succeeded');
    expect(Buffer.from(parsed.input.context[0]!).equals(context)).toBe(true);
    expect(parsed.output).toEqual([new HandedFile(0), new HandedFile(1), new HandedFile(2)]);
  });

  it('hands on one output file as its place 0', async () => {
    const file = randomBytes(100);
    const handed: number[] = [];
    const parsed = await readCogJson(
      (async function* () {
        yield Buffer.from(JSON.stringify({ status: 'succeeded', output: dataUrl(file, 'video/mp4') }));
      })(),
      {
        maxBytes: 1 << 24,
        onFile: async (f, index) => {
          expect(Buffer.from(f).equals(file)).toBe(true);
          handed.push(index);
        },
      },
    );
    expect(handed).toEqual([0]);
    expect(parsed).toEqual({ status: 'succeeded', output: new HandedFile(0) });
  });

  it('reads no further than the end of a file until it is handed on', () => {
    const files = [randomBytes(300), randomBytes(300)];
    const answer = Buffer.from(JSON.stringify({ output: files.map((f) => dataUrl(f)) }));
    const reader = new CogJsonReader({ maxBytes: 1 << 24, onFile: async () => undefined });
    const read = reader.push(answer);
    expect(read).toBe(answer.indexOf('",') + 1);
    expect(reader.files).toHaveLength(1);
  });
});
