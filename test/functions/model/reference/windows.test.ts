import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng, provenanceText, readProvenance } from '../../../../functions/core/png.ts';
import { composeFrame, gradeForSeed } from '../../../../functions/model/reference/composite.ts';
import { renderFrame } from '../../../../functions/model/reference/render.ts';
import {
  REFERENCE_DESCRIPTION,
  type ReferenceModel,
  startReferenceModel,
} from '../../../../functions/model/reference/server.ts';
import { encodeInputVideo } from '../../../../functions/worker/video-input.ts';
import { call, health, type Json, put, ready } from '../cog/client.ts';
import { dataUrl, maskPng, meanAbsDiff, meanColour, pixelsOf, plateRgb } from './frames.ts';

/**
 * Plates, masks, windows and context on the reference model, through the Cog contract as the worker would
 * use them (docs/reference-model.md, "Plates, windows and context").
 */

const W = 128;
const H = 72;
const START = 1001;
const plate = (frame: number) => plateRgb(W, H, frame);
const plateUrl = (frame: number) => dataUrl(encodePng(plate(frame), W, H));
const plateUrls = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => plateUrl(from + i));
const uniformMask = (value: number) => dataUrl(maskPng(W, H, () => value));

// A shot seeded frame by frame (seedMode per-frame) with job seed 7: the window that starts 4 frames later
// has seed 11. These two seeds' grades differ clearly; the figures below are measured on them.
const input = (overrides: Json = {}): Json => ({
  prompt: 'a lighthouse on a rocky coast, morning',
  seed: 7,
  shot_seed: 7,
  width: W,
  height: H,
  job_id: 'job_01JWINDOW',
  shot: 'EP101_SH040',
  ...overrides,
});

let model: ReferenceModel;
let predictions = 0;

beforeAll(async () => {
  model = await startReferenceModel({ port: 0, concurrency: 2 });
  await ready(model);
});
afterAll(() => model.close());

/** Runs a prediction that must succeed; the frames' PNGs and their pixels. */
async function frames(overrides: Json, on: ReferenceModel = model) {
  const { status, body } = await put(on, `p${predictions++}`, { input: input(overrides) });
  expect(status).toBe(200);
  expect(body, String(body.error)).toMatchObject({ status: 'succeeded' });
  const urls = body.output as string[];
  const pngs = urls.map((u) => Buffer.from(u.slice(u.indexOf(',') + 1), 'base64'));
  return { body, pngs, pixels: await Promise.all(pngs.map(pixelsOf)) };
}

/** Runs a prediction that must fail; its error. */
async function failure(overrides: Json): Promise<string> {
  const { status, body } = await put(model, `p${predictions++}`, { input: input(overrides) });
  expect(status).toBe(200);
  expect(body).toMatchObject({ status: 'failed', output: null });
  return body.error as string;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('the inputs of plates and windows in the OpenAPI document', () => {
  it('declares each with the shapes Cog gives list[Path], float and int inputs, after the inputs it had', async () => {
    const { body } = await call(`${model.url}/openapi.json`, 'GET');
    const schemas = (body.components as { schemas: Record<string, Json> }).schemas;
    const properties = (schemas.Input as { properties: Record<string, Json> }).properties;
    const files = { type: 'array', items: { type: 'string', format: 'uri' } };
    expect(properties.image).toEqual({
      ...files,
      title: 'Image',
      description: expect.stringMatching(/one image per frame .* or one image for every frame/),
      minItems: 1,
      maxItems: 129,
      'x-order': 9,
    });
    expect(properties.mask).toEqual({
      ...files,
      title: 'Mask',
      description: expect.stringMatching(/black keeps the plate, white shows the elements/),
      minItems: 1,
      maxItems: 129,
      'x-order': 10,
    });
    expect(properties.strength).toEqual({
      type: 'number',
      title: 'Strength',
      description: expect.stringMatching(/0 passes the plate through bit for bit/),
      default: 1,
      minimum: 0,
      maximum: 1,
      'x-order': 11,
    });
    expect(properties.start_frame).toEqual({
      type: 'integer',
      title: 'Start Frame',
      description: expect.stringMatching(/Absent: frame/),
      minimum: 0,
      maximum: 9999999,
      'x-order': 12,
    });
    expect(properties.num_frames).toEqual({
      type: 'integer',
      title: 'Num Frames',
      description: expect.stringMatching(/one PNG per frame/),
      default: 1,
      minimum: 1,
      maximum: 129,
      'x-order': 13,
    });
    expect(properties.context).toEqual({
      ...files,
      title: 'Context',
      description: expect.stringMatching(/context\[k\] is frame start_frame \+ k/),
      maxItems: 129,
      'x-order': 14,
    });
    expect((schemas.Input as { required: string[] }).required).toEqual(['prompt']);
    expect(schemas.Output).toEqual({
      type: 'array',
      title: 'Output',
      items: { type: 'string', format: 'uri' },
    });
  });
});

describe('a plate under the rendered elements', () => {
  it('passes the plate through bit for bit at strength 0, one plate per frame of the window', async () => {
    const { pixels } = await frames({
      start_frame: START,
      num_frames: 3,
      image: plateUrls(START, 3),
      strength: 0,
    });
    pixels.forEach((frame, i) => {
      expect(same(frame, plate(START + i))).toBe(true);
    });
    // A frame asked the old way, with `frame`, too.
    const single = await frames({ frame: START, image: [plateUrl(START)], strength: 0 });
    expect(same(single.pixels[0]!, plate(START))).toBe(true);
  });

  it('keeps the plate where the mask is black and shows the elements composited fully where it is white', async () => {
    const window = { start_frame: START, num_frames: 2 };
    const black = await frames({ ...window, image: plateUrls(START, 2), mask: [uniformMask(0)] });
    const white = await frames({ ...window, image: plateUrls(START, 2), mask: [uniformMask(255)] });
    const elements = await frames(window);
    for (const i of [0, 1]) {
      expect(same(black.pixels[i]!, plate(START + i))).toBe(true);
      expect(same(white.pixels[i]!, elements.pixels[i]!)).toBe(true);
      expect(meanAbsDiff(elements.pixels[i]!, plate(START + i))).toBeGreaterThan(20);
    }
  });

  it('blends where the mask is grey, and takes a list of one plate or mask as a still for every frame', async () => {
    const leftBlack = dataUrl(maskPng(W, H, (x) => (x < W / 2 ? 0 : 255)));
    const window = { start_frame: START, num_frames: 3 };
    const still = await frames({ ...window, image: [plateUrl(START)], mask: [leftBlack], strength: 1 });
    const listed = await frames({
      ...window,
      image: [plateUrl(START), plateUrl(START), plateUrl(START)],
      mask: [leftBlack, leftBlack, leftBlack],
    });
    const elements = await frames(window);
    still.pixels.forEach((frame, i) => {
      expect(same(frame, listed.pixels[i]!)).toBe(true);
      for (let y = 0; y < H; y += 9) {
        const left = (y * W + 3) * 3;
        const right = (y * W + W - 3) * 3;
        expect([...frame.subarray(left, left + 3)]).toEqual([...plate(START).subarray(left, left + 3)]);
        expect([...frame.subarray(right, right + 3)]).toEqual([
          ...elements.pixels[i]!.subarray(right, right + 3),
        ]);
      }
    });
    const grey = await frames({ ...window, image: [plateUrl(START)], mask: [uniformMask(128)] });
    const toPlate = meanAbsDiff(grey.pixels[0]!, plate(START));
    const toElements = meanAbsDiff(grey.pixels[0]!, elements.pixels[0]!);
    expect(Math.abs(toPlate - toElements) / (toPlate + toElements)).toBeLessThan(0.05);
  });

  describe('fetched over http', () => {
    let server: Server;
    let base: string;
    beforeAll(async () => {
      server = createServer((req, res) => {
        const frame = Number(/plate\.(\d+)\.png/.exec(req.url ?? '')?.[1]);
        if (!frame) return res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'image/png' }).end(encodePng(plate(frame), W, H));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it('gives the same frames as the same plates sent as data URLs', async () => {
      const window = { start_frame: START, num_frames: 4, strength: 0.6 };
      const urls = Array.from({ length: 4 }, (_, i) => `${base}/plate.${START + i}.png?X-Amz-Signature=abc`);
      const fetched = await frames({ ...window, image: urls });
      const inline = await frames({ ...window, image: plateUrls(START, 4) });
      fetched.pixels.forEach((frame, i) => {
        expect(same(frame, inline.pixels[i]!)).toBe(true);
      });
    });
  });
});

describe('a window of frames in one prediction', () => {
  it('renders frame k of a window with the grain of seed + k under the window grade, each PNG with its provenance', async () => {
    const window = await frames({
      start_frame: START,
      num_frames: 8,
      image: plateUrls(START, 8),
      strength: 0.7,
    });
    expect(window.pngs).toHaveLength(8);
    for (let i = 0; i < 8; i++) {
      // The frame seed a per-frame shot gives frame START + i; the scene stays the shot seed's.
      const rendered = renderFrame({
        prompt: input().prompt as string,
        negativePrompt: '',
        seed: 7 + i,
        shotSeed: 7,
        frame: START + i,
        width: W,
        height: H,
      });
      const expected = composeFrame(rendered, gradeForSeed(7), { plate: plate(START + i), strength: 0.7 });
      expect(Buffer.from(window.pixels[i]!).equals(Buffer.from(expected))).toBe(true);
      expect(readProvenance(window.pngs[i]!)).toMatchObject({
        seed: 7,
        frame: START + i,
        jobId: 'job_01JWINDOW',
      });
    }
    // The first frame of a window is what a one-frame window at that frame gives.
    const one = await frames({ start_frame: START, num_frames: 1, image: [plateUrl(START)], strength: 0.7 });
    expect(one.pngs[0]!.equals(window.pngs[0]!)).toBe(true);
    expect(window.body.logs).toMatch(/rendered frames 1001-1008 \(128x72, seed 7\) .* on 2 thread\(s\)/);
  });

  it('grades a window by its seed, and leaves a frame asked with `frame` ungraded as it always was', async () => {
    const request = {
      prompt: input().prompt as string,
      negativePrompt: '',
      seed: 7,
      shotSeed: 7,
      width: W,
      height: H,
    };
    const provenance = (frame: number) => ({
      ...provenanceText({
        generator: 'framecast',
        model: 'reference',
        prompt: request.prompt,
        seed: 7,
        frame,
        jobId: 'job_01JWINDOW',
        shot: 'EP101_SH040',
        width: W,
        height: H,
      }),
      Software: REFERENCE_DESCRIPTION,
    });
    const rendered = () => renderFrame({ ...request, frame: START });
    const graded = composeFrame(rendered(), gradeForSeed(7), { strength: 1 });
    const window = await frames({ start_frame: START });
    expect(window.pngs[0]!.equals(encodePng(graded, W, H, provenance(START)))).toBe(true);
    const single = await frames({ frame: START });
    expect(single.pngs[0]!.equals(encodePng(rendered(), W, H, provenance(START)))).toBe(true);
  });
});

describe('a window continuing the one before it from context', () => {
  // Window A: frames 1001-1008, seed 7. Window B overlaps its last 4 frames: 1005-1012, seed 11.
  const A = { start_frame: 1001, num_frames: 8 };
  const B = { start_frame: 1005, num_frames: 8, seed: 11 };
  const largestChannelShift = (a: Uint8Array, b: Uint8Array) => {
    const [ma, mb] = [meanColour(a), meanColour(b)];
    return Math.max(...ma.map((v, c) => Math.abs(v - mb[c]!)));
  };

  it('jumps at the seam without context, and continues the context frames without a jump when given them', async () => {
    const a = await frames(A);
    const alone = await frames(B);
    const continued = await frames({ ...B, context: (a.body.output as string[]).slice(4) });
    expect(continued.body.logs).toMatch(/grade: measured on 4 context frame\(s\)/);

    // An ordinary step within a window, for scale: the grain changes with every frame seed, about 1.2 of 255.
    const step = meanAbsDiff(a.pixels[6]!, a.pixels[7]!);
    expect(step).toBeLessThan(1.5);
    // The overlap: the frames B makes for 1005-1008 against A's. B's frame k has the grain of 11 + k, A's
    // frame 4 + k that of 7 + 4 + k: the same. With context only the grade fit's rounding differs, and the
    // mean colour agrees within 0.1; without it the grades differ: about 12 and 14.
    for (let k = 0; k < 4; k++) {
      expect(meanAbsDiff(a.pixels[4 + k]!, continued.pixels[k]!)).toBeLessThan(step);
      expect(largestChannelShift(a.pixels[4 + k]!, continued.pixels[k]!)).toBeLessThan(0.5);
      expect(meanAbsDiff(a.pixels[4 + k]!, alone.pixels[k]!)).toBeGreaterThan(8);
      expect(largestChannelShift(a.pixels[4 + k]!, alone.pixels[k]!)).toBeGreaterThan(8);
    }
    // The seam: from A's last frame (1008) to B's first new one (1009).
    expect(meanAbsDiff(a.pixels[7]!, alone.pixels[4]!)).toBeGreaterThan(8);
    expect(meanAbsDiff(a.pixels[7]!, continued.pixels[4]!)).toBeLessThan(1.5);
  });

  it('follows a context that was graded again: the whole window takes its grade', async () => {
    const a = await frames(A);
    const context = (a.body.output as string[]).slice(4);
    // A colourist pulled the red of the stored frames down to 70%.
    const regraded = await Promise.all(
      context.map(async (url) => {
        const px = await pixelsOf(url);
        for (let i = 0; i < px.length; i += 3) px[i] = Math.round(px[i]! * 0.7);
        return dataUrl(encodePng(px, W, H));
      }),
    );
    const plain = await frames({ ...B, context });
    const followed = await frames({ ...B, context: regraded });
    for (let i = 0; i < 8; i++) {
      const [r0, g0, b0] = meanColour(plain.pixels[i]!);
      const [r1, g1, b1] = meanColour(followed.pixels[i]!);
      expect(Math.abs(r1 / r0 - 0.7)).toBeLessThan(0.02);
      expect(Math.abs(g1 - g0)).toBeLessThan(0.1);
      expect(Math.abs(b1 - b0)).toBeLessThan(0.1);
    }
  });

  it('measures the grade under a plate and a mask, from the plates of the overlap frames', async () => {
    const halfMask = dataUrl(maskPng(W, H, (x) => (x < W / 3 ? 0 : 200)));
    const under = (from: number) => ({ image: plateUrls(from, 8), mask: [halfMask], strength: 0.9 });
    const a = await frames({ ...A, ...under(1001) });
    const context = (a.body.output as string[]).slice(4);
    const continued = await frames({ ...B, ...under(1005), context });
    const alone = await frames({ ...B, ...under(1005) });
    // Frame 1008 from both windows: about 0.5 apart with context (grain, under the plate), 5.0 without.
    expect(meanAbsDiff(a.pixels[7]!, continued.pixels[3]!)).toBeLessThan(1);
    expect(meanAbsDiff(a.pixels[7]!, alone.pixels[3]!)).toBeGreaterThan(4);
  });
});

describe('canceling a window', () => {
  it('stops fetching its plates, frees its slot and keeps nothing', async () => {
    const asked: string[] = [];
    let dropped = 0;
    const stalling = createServer((req, res) => {
      // Answers nothing: the plates are still on their way when the prediction is canceled.
      asked.push(req.url ?? '');
      res.on('close', () => dropped++);
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}`;
    try {
      const image = Array.from({ length: 20 }, (_, i) => `${base}/plate.${START + i}.png`);
      const id = `cancel-${predictions++}`;
      const waiting = put(model, id, { input: input({ start_frame: START, num_frames: 20, image }) });
      while (asked.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      expect((await call(`${model.url}/predictions/${id}/cancel`, 'POST')).status).toBe(200);
      expect((await waiting).body).toMatchObject({ status: 'canceled', output: null });
      while (((await health(model)).slots as { busy: number }).busy > 0 || dropped < asked.length) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // One more plate than there are render threads was asked for at a time, and no more after the cancel.
      expect(asked).toHaveLength(3);
    } finally {
      stalling.closeAllConnections();
      await new Promise((resolve) => stalling.close(resolve));
    }
  });
});

describe('a window as one video file', () => {
  let video: ReferenceModel;
  beforeAll(async () => {
    video = await startReferenceModel({ port: 0, concurrency: 2, output: 'video' });
    await ready(video);
  });
  afterAll(() => video.close());

  it('declares one file as its output and decodes to the very pixels of the list of PNGs', async () => {
    const { body: document } = await call(`${video.url}/openapi.json`, 'GET');
    expect((document.components as { schemas: Json }).schemas).toMatchObject({
      Output: { type: 'string', title: 'Output', format: 'uri' },
    });
    const window = {
      start_frame: START,
      num_frames: 6,
      image: plateUrls(START, 6),
      mask: [uniformMask(180)],
    };
    const { body } = await put(video, 'video-1', { input: input(window) });
    expect(body.status).toBe('succeeded');
    const output = body.output as string;
    expect(output).toMatch(/^data:video\/x-matroska;base64,/);

    const dir = mkdtempSync(join(tmpdir(), 'framecast-video-test-'));
    try {
      const file = join(dir, 'window.mkv');
      writeFileSync(file, Buffer.from(output.slice(output.indexOf(',') + 1), 'base64'));
      const ffmpeg = (await import('@ffmpeg-installer/ffmpeg')).default.path;
      const probe = execFileSync(ffmpeg, ['-hide_banner', '-i', file, '-f', 'null', '-'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
      expect(probe).toBe('');
      const decoded = execFileSync(
        ffmpeg,
        ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
        {
          maxBuffer: 64 << 20,
        },
      );
      const images = await frames(window);
      expect(decoded.length).toBe(6 * W * H * 3);
      images.pixels.forEach((frame, i) => {
        expect(same(decoded.subarray(i * W * H * 3, (i + 1) * W * H * 3), frame)).toBe(true);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('inputs that cannot make a window', () => {
  it.each([
    [
      'a strength over 1',
      { strength: 2 },
      ['strength'],
      'less_than_equal',
      'Input should be less than or equal to 1',
    ],
    [
      'a window of no frames',
      { num_frames: 0 },
      ['num_frames'],
      'greater_than_equal',
      'Input should be greater than or equal to 1',
    ],
    [
      'a window over 129 frames',
      { num_frames: 130 },
      ['num_frames'],
      'less_than_equal',
      'Input should be less than or equal to 129',
    ],
    [
      'a plate that is not a list',
      { image: 'data:image/png;base64,AA==' },
      ['image'],
      'list_type',
      'Input should be a valid list',
    ],
    [
      'a plate that is a local file',
      { image: ['file:///plates/plate.1001.png'] },
      ['image', 0],
      'url_scheme',
      "URL scheme should be 'data', 'http' or 'https'",
    ],
    [
      'plates that are neither one nor one per frame',
      { num_frames: 4, image: ['data:,a', 'data:,b'] },
      ['image'],
      'value_error',
      'Value error, image has 2 images: give one per frame (num_frames is 4) or one for every frame',
    ],
    [
      'a mask without a plate',
      { mask: ['data:,a'] },
      ['mask'],
      'value_error',
      'Value error, a mask needs a plate: give image too',
    ],
    [
      'more context than the window',
      { num_frames: 2, context: ['data:,a', 'data:,b', 'data:,c'] },
      ['context'],
      'value_error',
      "Value error, context has 3 frames, more than the window's 2",
    ],
    [
      'a window past the last frame',
      { start_frame: 9999990, num_frames: 20 },
      ['num_frames'],
      'value_error',
      'Value error, the window ends at frame 10000009, after the last frame, 9999999',
    ],
  ])('refuses %s with 422, as Cog refuses an invalid input', async (_, overrides, at, type, msg) => {
    const { status, body } = await put(model, `p${predictions++}`, { input: input(overrides) });
    expect(status).toBe(422);
    expect(body.detail).toEqual([{ loc: ['body', 'input', ...at], msg, type }]);
  });

  it('fails a prediction whose plate is not the frame size, saying which and why', async () => {
    const big = dataUrl(encodePng(plateRgb(W * 2, H, START), W * 2, H));
    expect(
      await failure({
        start_frame: START,
        num_frames: 3,
        image: [plateUrl(START), big, plateUrl(START + 2)],
      }),
    ).toBe(
      "image[1] (a data URL) is 256x72, the prediction is 128x72: plates, masks and context frames must be the frame's size",
    );
  });

  it('fails a prediction whose plate cannot be fetched, or is not an image', async () => {
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    expect(await failure({ image: [`http://127.0.0.1:${port}/plate.1001.png?X-Amz-Signature=secret`] })).toBe(
      `image[0] (http://127.0.0.1:${port}/plate.1001.png) could not be fetched: ECONNREFUSED`,
    );
    expect(await failure({ image: [plateUrl(START)], context: ['data:text/plain,not%20a%20frame'] })).toBe(
      'context[0] (a data URL) is neither a PNG nor a JPEG',
    );
  });
});

describe('a plate or mask given as one video', () => {
  const video = async (pngs: Uint8Array[]) => {
    const bytes = await encodeInputVideo(
      pngs.map((png, i) => ({ sha256: String(i), read: async () => png })),
      'image',
    );
    return `data:video/x-matroska;base64,${bytes.toString('base64')}`;
  };
  const platePngs = (count: number) =>
    Array.from({ length: count }, (_, i) => encodePng(plate(START + i), W, H));
  const masks = (count: number) =>
    Array.from({ length: count }, (_, i) => maskPng(W, H, (x) => (x < W / 2 ? 40 * i : 255 - 40 * i)));

  it('takes frame k of the video for frame k of the window: the same frames as the list of PNGs', async () => {
    const window = { start_frame: START, num_frames: 5, strength: 0.6 };
    const asList = await frames({
      ...window,
      image: platePngs(5).map((p) => dataUrl(p)),
      mask: masks(5).map((m) => dataUrl(m)),
    });
    const asVideo = await frames({
      ...window,
      image: [await video(platePngs(5))],
      mask: [await video(masks(5))],
    });
    expect(asVideo.pixels.map((frame, i) => same(frame, asList.pixels[i]!))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    const passed = await frames({ ...window, strength: 0, image: [await video(platePngs(5))] });
    expect(passed.pixels.map((frame, i) => same(frame, plate(START + i)))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  it('fails a prediction whose video is shorter than the window, or of another size', async () => {
    expect(await failure({ start_frame: START, num_frames: 5, image: [await video(platePngs(3))] })).toBe(
      'image[0] (a data URL) is a video of 3 frame(s), the window has 5: give one frame per frame of the window',
    );
    const big = await video([encodePng(plateRgb(W * 2, H, START), W * 2, H)]);
    expect(await failure({ start_frame: START, num_frames: 1, image: [big] })).toMatch(
      /^image\[0\] frame 0 \(a data URL\) is 256x72, the prediction is 128x72/,
    );
  });
});
