import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { encodePng } from '../../core/png.ts';
import { type FrameRequest, renderFrame } from './render.ts';

/**
 * Render threads, one per prediction slot: rendering is CPU-bound and synchronous, so it runs off the event
 * loop, health checks answer BUSY instead of hanging, and slots really run in parallel. A thread runs this
 * very module, which imports only the renderer and the PNG encoder.
 *
 * No parameter properties here or in anything a render thread imports: Node 22+ loads these files with type
 * stripping alone, which only erases syntax (checked with tsc --erasableSyntaxOnly).
 */

export interface RenderedFrame {
  png: Uint8Array;
  renderMs: number;
  encodeMs: number;
}

export interface RenderThreads {
  /** Renders and encodes one frame on an idle thread; `text` goes into the PNG's text chunks. */
  render(request: FrameRequest, text: Record<string, string>): Promise<RenderedFrame>;
  /** Stops every thread; a render under way is abandoned. */
  close(): Promise<void>;
}

type RenderReply = ({ id: number } & RenderedFrame) | { id: number; error: string };

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
  let closing = false;
  let lost: Error | undefined;
  let nextId = 0;
  const stopAll = async () => {
    closing = true;
    await Promise.all(all.map((t) => t.worker.terminate()));
  };

  function onThreadLost(thread: Thread, error: Error): void {
    if (closing) return;
    lost = error;
    onLost(error);
    thread.pending?.reject(error);
    thread.pending = undefined;
  }

  async function startThread(): Promise<Thread> {
    const worker = spawnRenderWorker();
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

  return {
    async render(request, text) {
      if (lost) throw lost;
      // The server runs at most `count` predictions at once, each holding at most one thread.
      const thread = idle.pop();
      if (!thread) throw new Error('no idle render thread');
      const reply = await new Promise<RenderReply>((resolve, reject) => {
        thread.pending = { resolve, reject };
        thread.worker.postMessage({ id: nextId++, request, text });
      }).finally(() => idle.push(thread));
      if ('error' in reply) throw new Error(reply.error);
      return reply;
    },
    close: stopAll,
  };
}

function spawnRenderWorker(): Worker {
  const self = new URL(import.meta.url);
  const data = { role: RENDER_WORKER };
  const canImportSelf =
    !self.pathname.endsWith('.ts') || Boolean((process.features as { typescript?: unknown }).typescript);
  if (canImportSelf) return new Worker(self, { workerData: data });
  // Running from TypeScript sources on a Node without type stripping (Node 20, vitest): the thread first
  // registers tsx, the dev-time loader, then imports this module. A bundled or Node 24 build never gets here.
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(self.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

function serveRenders(port: NonNullable<typeof parentPort>): void {
  // Warm the JIT on a small frame so the first prediction is not the slow one.
  renderFrame({ prompt: 'warm-up', seed: 0, frame: 0, width: 64, height: 64 });
  port.on('message', (m: { id: number; request: FrameRequest; text: Record<string, string> }) => {
    try {
      const t0 = performance.now();
      const rgb = renderFrame(m.request);
      const t1 = performance.now();
      const png = encodePng(rgb, m.request.width, m.request.height, m.text);
      const t2 = performance.now();
      port.postMessage({ id: m.id, png, renderMs: t1 - t0, encodeMs: t2 - t1 } satisfies RenderReply);
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message } satisfies RenderReply);
    }
  });
  port.postMessage({ ready: true });
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === RENDER_WORKER) {
  serveRenders(parentPort);
}
