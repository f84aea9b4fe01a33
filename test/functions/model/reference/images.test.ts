import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../../../../functions/core/png.ts';
import { type ImageRequest, readImage, shown } from '../../../../functions/model/reference/images.ts';

/** Image inputs as the worker sends them (presigned http URLs) and as tests and direct callers do (data URLs). */

const W = 32;
const H = 24;
const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 31) & 255);
const png = encodePng(rgb, W, H);
const dataUrl = (bytes: Buffer, type = 'image/png') => `data:${type};base64,${bytes.toString('base64')}`;

const request = (overrides: Partial<ImageRequest> = {}): ImageRequest => ({
  name: 'image[0]',
  kind: 'rgb',
  width: W,
  height: H,
  limits: { timeoutMs: 2000, maxBytes: 1024 * 1024 },
  signal: new AbortController().signal,
  ...overrides,
});

let server: Server;
let base: string;
let jpeg: Buffer;
/** A port nothing listens on: taken, then let go. */
let closedPort: number;

beforeAll(async () => {
  jpeg = await sharp(Buffer.from(rgb), { raw: { width: W, height: H, channels: 3 } })
    .jpeg()
    .toBuffer();
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/plate.png') return res.end(png);
    if (path === '/plate.jpg') return res.end(jpeg);
    if (path === '/big.png') return res.end(Buffer.alloc(4096));
    if (path === '/slow.png') return void setTimeout(() => res.end(png), 1500);
    if (path === '/notes.txt') return res.end('not an image');
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const gone = createServer();
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
  closedPort = (gone.address() as AddressInfo).port;
  await new Promise((resolve) => gone.close(resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('reading an image input', () => {
  it('decodes a PNG data URL to its exact pixels', async () => {
    expect(Buffer.from(await readImage(dataUrl(png), request())).equals(Buffer.from(rgb))).toBe(true);
  });

  it('fetches an http URL, PNG or JPEG', async () => {
    const fetched = await readImage(`${base}/plate.png?X-Amz-Signature=secret`, request());
    expect(Buffer.from(fetched).equals(Buffer.from(rgb))).toBe(true);
    expect((await readImage(`${base}/plate.jpg`, request())).length).toBe(W * H * 3);
  });

  it('reads a mask as one grey byte a pixel: the luminance, exact for greys', async () => {
    const greys = Uint8Array.from({ length: W * H * 3 }, (_, i) => Math.floor(i / 3) & 255);
    const mask = await readImage(dataUrl(encodePng(greys, W, H)), request({ name: 'mask[0]', kind: 'grey' }));
    expect(mask.length).toBe(W * H);
    expect([...mask.subarray(0, 5)]).toEqual([0, 1, 2, 3, 4]);
  });

  it.each([
    [
      'of another size',
      () => dataUrl(png),
      { width: 64 },
      /image\[0\] \(a data URL\) is 32x24, the prediction is 64x24/,
    ],
    [
      'that is not an image',
      () => `${base}/notes.txt`,
      {},
      /image\[0\] \(http:.*\/notes.txt\) is neither a PNG nor a JPEG/,
    ],
    ['that is missing', () => `${base}/gone.png`, {}, /image\[0\] \(http:.*\/gone.png\) answered HTTP 404/],
    [
      'on a server that is not there',
      () => `http://127.0.0.1:${closedPort}/plate.png`,
      {},
      /could not be fetched: ECONNREFUSED/,
    ],
    [
      'that takes too long',
      () => `${base}/slow.png`,
      { limits: { timeoutMs: 200, maxBytes: 1 << 20 } },
      /image\[0\] \(http:.*\/slow.png\) did not arrive within 200 ms/,
    ],
    [
      'over the byte limit',
      () => `${base}/big.png`,
      { limits: { timeoutMs: 2000, maxBytes: 1000 } },
      /larger than 1000 bytes/,
    ],
    [
      'over the byte limit as a data URL',
      () => dataUrl(png),
      { limits: { timeoutMs: 2000, maxBytes: 100 } },
      /image\[0\] is larger than 100 bytes/,
    ],
    ['that is a truncated PNG', () => dataUrl(png.subarray(0, 60)), {}, /is not a readable png/],
  ])('refuses an image %s, naming the input', async (_, uri, overrides, message) => {
    await expect(readImage(uri(), request(overrides))).rejects.toThrow(message);
  });

  it('never shows the query of a URL, which for a presigned URL is a credential', async () => {
    const error = await readImage(`${base}/gone.png?X-Amz-Signature=secret`, request()).catch((e) => e);
    expect(String(error)).not.toMatch(/secret/);
    expect(shown('https://bucket.s3.amazonaws.com/a/plate.0001.png?X-Amz-Signature=secret')).toBe(
      'https://bucket.s3.amazonaws.com/a/plate.0001.png',
    );
  });

  it('stops waiting when the prediction is canceled', async () => {
    const cancel = new AbortController();
    const reading = readImage(`${base}/slow.png`, request({ signal: cancel.signal }));
    cancel.abort(new Error('canceled'));
    await expect(reading).rejects.toThrow('canceled');
  });
});
