import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { encodePng } from '../../core/png.ts';
import { composeFrame, type Grade, gradeEvidence, type Underlay } from './composite.ts';
import { type FrameRequest, renderFrame } from './render.ts';

/**
 * Render threads, one per prediction slot: rendering is CPU-bound and synchronous, so it runs off the event
 * loop, health checks answer BUSY instead of hanging, and slots really run in parallel. A window's frames
 * are spread over every thread that is free, so a window renders faster while other slots are idle; a
 * render waits its turn for a thread, first come first served, so no prediction waits for a whole window.
 * A thread runs this very module, which imports only the renderer, the compositing and the PNG encoder.
 *
 * No parameter properties here or in anything a render thread imports: Node 22+ loads these files with type
 * stripping alone, which only erases syntax (checked with tsc --erasableSyntaxOnly).
 */

/** One frame: rendered, graded, laid over its plate, and encoded as a PNG when `text` is given. */
export interface FrameJob {
  readonly request: FrameRequest;
  readonly grade?: Grade;
  readonly underlay?: Underlay;
  /** The PNG's text chunks (provenance); absent, the frame comes back as raw RGB (for a video). */
  readonly text?: Record<string, string>;
}

export interface RenderedFrame {
  /** The PNG, when the job gave `text`; otherwise the raw 8-bit RGB. */
  bytes: Uint8Array;
  renderMs: number;
  encodeMs: number;
}

/** A context frame to measure: the frame rendered without a grade, against what the context shows. */
export interface MeasureJob {
  readonly request: FrameRequest;
  /** 8-bit RGB of the context frame. */
  readonly context: Uint8Array;
  readonly underlay?: Underlay;
}

export interface RenderThreads {
  /** How many frames render at once. */
  readonly size: number;
  /** Renders one frame on the next free thread. */
  render(job: FrameJob): Promise<RenderedFrame>;
  /** The grade evidence of one context frame (`gradeEvidence`), on the next free thread. */
  measure(job: MeasureJob): Promise<Float64Array>;
  /** Stops every thread; a render under way is abandoned, one waiting for a thread fails. */
  close(): Promise<void>;
}

type ThreadMessage = { id: number } & (({ kind: 'frame' } & FrameJob) | ({ kind: 'measure' } & MeasureJob));
type RenderReply =
  | ({ id: number } & RenderedFrame)
  | { id: number; evidence: Float64Array }
  | { id: number; error: string };

interface Thread {
  worker: Worker;
  pending?: { resolve: (r: RenderReply) => void; reject: (e: Error) => void };
}

const RENDER_WORKER = 'framecast-reference-render';

/**
 * Starts `count` render threads and resolves once all are ready. `onLost` hears of a thread that died
 * afterwards (not of those stopped by `close`): its render fails, and no further render is taken.
 */
export async function startRenderThreads(
  count: number,
  onLost: (error: Error) => void,
): Promise<RenderThreads> {
  const idle: Thread[] = [];
  const all: Thread[] = [];
  /** Renders waiting for a thread, first come first served. */
  const waiting: { take: (t: Thread) => void; fail: (e: Error) => void }[] = [];
  let closing = false;
  let lost: Error | undefined;
  let nextId = 0;
  const failWaiting = (error: Error) => {
    for (const w of waiting.splice(0)) w.fail(error);
  };
  const stopAll = async () => {
    closing = true;
    failWaiting(new Error('render threads stopped'));
    await Promise.all(all.map((t) => t.worker.terminate()));
  };

  function onThreadLost(thread: Thread, error: Error): void {
    if (closing) return;
    lost = error;
    onLost(error);
    thread.pending?.reject(error);
    thread.pending = undefined;
    failWaiting(error);
  }

  async function startThread(): Promise<Thread> {
    const worker = await spawnRenderWorker();
    const thread: Thread = { worker };
    all.push(thread);
    await new Promise<void>((resolve, reject) => {
      const onReady = (m: unknown) => {
        settle();
        (m as { ready?: boolean }).ready ? resolve() : reject(new Error('unexpected first message'));
      };
      const onError = (err: Error) => {
        settle();
        reject(err);
      };
      const onExit = (code: number) => onError(new Error(`render thread exited with code ${code}`));
      // Only our own listeners come off: Worker keeps internal ones that removeAllListeners would break.
      const settle = () => {
        worker.off('message', onReady);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onReady);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    worker.on('message', (reply: RenderReply) => {
      const pending = thread.pending;
      thread.pending = undefined;
      pending?.resolve(reply);
    });
    worker.on('error', (err) => onThreadLost(thread, err));
    worker.on('exit', (code) => onThreadLost(thread, new Error(`exited with code ${code}`)));
    return thread;
  }

  try {
    idle.push(...(await Promise.all(Array.from({ length: count }, () => startThread()))));
  } catch (err) {
    // One thread that cannot start fails the setup; the others stop rather than idle on.
    await stopAll();
    throw err;
  }

  function acquire(): Promise<Thread> {
    if (lost) return Promise.reject(lost);
    if (closing) return Promise.reject(new Error('render threads stopped'));
    const thread = idle.pop();
    if (thread) return Promise.resolve(thread);
    return new Promise((take, fail) => waiting.push({ take, fail }));
  }

  function release(thread: Thread): void {
    const next = waiting.shift();
    if (next) next.take(thread);
    else idle.push(thread);
  }

  async function run(message: ThreadMessage): Promise<RenderReply> {
    const thread = await acquire();
    const reply = await new Promise<RenderReply>((resolve, reject) => {
      thread.pending = { resolve, reject };
      thread.worker.postMessage(message);
    }).finally(() => release(thread));
    if ('error' in reply) throw new Error(reply.error);
    return reply;
  }

  return {
    size: count,
    async render(job) {
      const reply = await run({ id: nextId++, kind: 'frame', ...job });
      if (!('bytes' in reply)) throw new Error('render thread answered a frame with no frame');
      return reply;
    },
    async measure(job) {
      const reply = await run({ id: nextId++, kind: 'measure', ...job });
      if (!('evidence' in reply)) throw new Error('render thread answered a measure with no evidence');
      return reply.evidence;
    },
    close: stopAll,
  };
}

async function spawnRenderWorker(): Promise<Worker> {
  const self = new URL(import.meta.url);
  const data = { role: RENDER_WORKER };
  const canImportSelf =
    !self.pathname.endsWith('.ts') || Boolean((process.features as { typescript?: unknown }).typescript);
  if (canImportSelf) return new Worker(self, { workerData: data });
  // Running from TypeScript sources on a Node without type stripping (Node 20: `npm run dev`, vitest): the
  // thread runs this module bundled to JavaScript by esbuild (a dev dependency), once per process. Loading
  // the sources through tsx instead cost each thread about half a second of CPU; the bundle, a tenth of
  // that. No --import or loader of the parent's is needed to run it. A bundled or Node 24 build never gets here.
  return new Worker(new URL(await selfAsJavaScript()), { workerData: data, execArgv: [] });
}

let bundled: Promise<string> | undefined;

/** This module and what it imports as one ES module, in a data: URL. */
function selfAsJavaScript(): Promise<string> {
  bundled ??= import('esbuild').then(({ buildSync }) => {
    const out = buildSync({
      entryPoints: [fileURLToPath(import.meta.url)],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: `node${process.versions.node.split('.')[0]}`,
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0]?.text;
    if (code === undefined) throw new Error('esbuild gave no bundle of the render thread');
    return `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`;
  });
  return bundled;
}

function serveRenders(port: NonNullable<typeof parentPort>): void {
  // Warm the JIT on a small frame so the first prediction is not the slow one.
  renderFrame({ prompt: 'warm-up', seed: 0, frame: 0, width: 64, height: 64 });
  port.on('message', (m: ThreadMessage) => {
    try {
      const t0 = performance.now();
      const rgb = renderFrame(m.request);
      if (m.kind === 'measure') {
        const evidence = gradeEvidence(rgb, m.context, m.underlay ?? { strength: 1 });
        port.postMessage({ id: m.id, evidence } satisfies RenderReply);
        return;
      }
      composeFrame(rgb, m.grade, m.underlay ?? { strength: 1 });
      const t1 = performance.now();
      const bytes = m.text ? encodePng(rgb, m.request.width, m.request.height, m.text) : rgb;
      const t2 = performance.now();
      port.postMessage({ id: m.id, bytes, renderMs: t1 - t0, encodeMs: t2 - t1 } satisfies RenderReply);
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message } satisfies RenderReply);
    }
  });
  port.postMessage({ ready: true });
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === RENDER_WORKER) {
  serveRenders(parentPort);
}
