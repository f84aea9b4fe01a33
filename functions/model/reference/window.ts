import { type Grade, gradeForSeed, gradeFromEvidence, type Underlay } from './composite.ts';
import {
  decodeImage,
  ImageInputError,
  type ImageLimits,
  type ImageRequest,
  isMatroska,
  readImage,
  readInputFile,
  shown,
} from './images.ts';
import type { FrameRequest } from './render.ts';
import type { RenderThreads } from './render-thread.ts';
import { decodeVideoInput } from './video-input.ts';

/**
 * One prediction of the reference model: a window of frames, each rendered on a free render thread, graded
 * and laid over its plate. A single frame is a window of one.
 *
 * Memory stays near two copies of the window: the frames made so far (PNGs, or for a video the file being
 * written), and the plates, masks and renders of the few frames under way (one more than there are render
 * threads, so a frame's plate is being fetched while the others render).
 */

export interface WindowRequest {
  readonly prompt: string;
  readonly negativePrompt: string;
  /** The window's seed: its scene (unless `shotSeed`), its grain, and its grade when `graded`. */
  readonly seed: number;
  readonly shotSeed?: number;
  readonly width: number;
  readonly height: number;
  readonly startFrame: number;
  readonly numFrames: number;
  /** The window takes a grade from its seed; false keeps a single frame asked by `frame` as it always was. */
  readonly graded: boolean;
  /** Plates: one per frame, one for every frame, or one video of the window's frames. */
  readonly image?: readonly string[];
  /** Masks: one per frame, one for every frame, or one video of the window's frames. */
  readonly mask?: readonly string[];
  readonly strength: number;
  /** Frames already made: `context[k]` is frame `startFrame + k`. */
  readonly context?: readonly string[];
}

export interface WindowDeps {
  readonly threads: RenderThreads;
  readonly limits: ImageLimits;
  readonly signal: AbortSignal;
  log(line: string): void;
}

/** Where each frame goes: `text` gives a frame its PNG text chunks; without it the frame is raw RGB. */
export interface FrameSink {
  text?(frame: number): Record<string, string>;
  /** Called as frames are made, in any order; `index` counts from the window's start. */
  frame(index: number, bytes: Uint8Array): Promise<void> | void;
}

/** Renders the window into `sink`; throws the first failure (an input that cannot be read, say). */
export async function renderWindow(w: WindowRequest, deps: WindowDeps, sink: FrameSink): Promise<void> {
  const { threads, signal } = deps;
  const started = performance.now();
  const frameAt = (index: number) => w.startFrame + index;
  const request = (index: number): FrameRequest => ({
    prompt: w.prompt,
    negativePrompt: w.negativePrompt,
    // With a shot seed holding the scene, frame k of a window takes the grain of seed + k: the frame seed a
    // per-frame shot gives it, so neighbouring windows agree on the grain of the frames they share and a
    // chained seam shows no more change than the frames inside a window.
    seed: w.shotSeed !== undefined ? (w.seed + index) % 2 ** 32 : w.seed,
    ...(w.shotSeed !== undefined && { shotSeed: w.shotSeed }),
    frame: frameAt(index),
    width: w.width,
    height: w.height,
  });

  const singles = new Map<string, Promise<(index: number) => Promise<Uint8Array>>>();
  /**
   * The input's image for frame `index`. A list of one is a still, read once for every frame, or a video
   * (a Matroska file), whose frame k is the window's frame k.
   */
  function imageOf(name: string, list: readonly string[] | undefined, kind: 'rgb' | 'grey', index: number) {
    if (!list) return undefined;
    const asked = (at: number): ImageRequest => ({
      name: `${name}[${at}]`,
      kind,
      width: w.width,
      height: w.height,
      limits: deps.limits,
      signal,
    });
    if (list.length > 1) return readImage(list[index]!, asked(index));
    let single = singles.get(name);
    if (!single) {
      single = openSingle(list[0]!, asked(0));
      singles.set(name, single);
    }
    return single.then((frameOf) => frameOf(index));
  }
  async function openSingle(uri: string, asked: ImageRequest) {
    const bytes = await readInputFile(uri, asked);
    if (!isMatroska(bytes)) {
      const still = decodeImage(bytes, uri, asked);
      return () => still;
    }
    const pngs = await decodeVideoInput(bytes, uri, asked.name, w.numFrames, signal);
    if (pngs.length < w.numFrames) {
      throw new ImageInputError(
        `${asked.name} (${shown(uri)}) is a video of ${pngs.length} frame(s), the window has ${w.numFrames}: give one frame per frame of the window`,
      );
    }
    const decoded = new Map<number, Promise<Uint8Array>>();
    return (index: number) => {
      let frame = decoded.get(index);
      if (!frame) {
        frame = decodeImage(pngs[index]!, uri, { ...asked, name: `${asked.name} frame ${index}` });
        decoded.set(index, frame);
      }
      return frame;
    };
  }
  async function underlayOf(index: number): Promise<Underlay | undefined> {
    const [plate, mask] = await Promise.all([
      imageOf('image', w.image, 'rgb', index),
      imageOf('mask', w.mask, 'grey', index),
    ]);
    return plate && { plate, ...(mask && { mask }), strength: w.strength };
  }

  let grade: Grade | undefined = w.graded ? gradeForSeed(w.seed) : undefined;
  let gradeSource = w.graded ? `seed ${w.seed}` : 'none';
  const context = w.context ?? [];
  if (context.length > 0) {
    const evidence: Float64Array[] = [];
    await eachIndex(context.length, threads.size + 1, signal, async (k) => {
      const [seen, underlay] = await Promise.all([
        readImage(context[k]!, {
          name: `context[${k}]`,
          kind: 'rgb',
          width: w.width,
          height: w.height,
          limits: deps.limits,
          signal,
        }),
        underlayOf(k),
      ]);
      evidence[k] = await threads.measure({
        request: request(k),
        context: seen,
        ...(underlay && { underlay }),
      });
    });
    const measured = gradeFromEvidence(evidence);
    if (measured) {
      grade = measured;
      gradeSource = `measured on ${context.length} context frame(s)`;
    } else {
      deps.log('the context frames show none of the rendered elements (black mask or strength 0)');
    }
  }
  if (grade) deps.log(`grade: ${gradeSource} (${grade.map((g) => g.toFixed(4)).join(' ')})`);

  let renderMs = 0;
  let encodeMs = 0;
  await eachIndex(w.numFrames, threads.size + 1, signal, async (index) => {
    const underlay = await underlayOf(index);
    const text = sink.text?.(frameAt(index));
    const made = await threads.render({
      request: request(index),
      ...(grade && { grade }),
      ...(underlay && { underlay }),
      ...(text && { text }),
    });
    renderMs += made.renderMs;
    encodeMs += made.encodeMs;
    await sink.frame(index, made.bytes);
  });

  const frames =
    w.numFrames === 1 ? `frame ${w.startFrame}` : `frames ${w.startFrame}-${frameAt(w.numFrames - 1)}`;
  const spread =
    w.numFrames === 1
      ? ''
      : ` on ${threads.size} thread(s), ${Math.round(performance.now() - started)} ms in all`;
  deps.log(
    `rendered ${frames} (${w.width}x${w.height}, seed ${w.seed}) in ${Math.round(renderMs)} ms${sink.text ? `, encoded in ${Math.round(encodeMs)} ms` : ''}${spread}`,
  );
}

/**
 * Runs `work` for 0..count-1, `lanes` at a time, in order of start. The first failure (or the prediction's
 * cancel) stops new work from starting; it is thrown once the work under way has settled.
 */
async function eachIndex(
  count: number,
  lanes: number,
  signal: AbortSignal,
  work: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lane = async () => {
    while (!failed && next < count) {
      if (signal.aborted) {
        failed = { error: signal.reason };
        break;
      }
      const index = next++;
      try {
        await work(index);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, lanes) }, lane));
  if (failed) throw failed.error;
}
