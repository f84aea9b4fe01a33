import { type ChildProcess, spawn } from 'node:child_process';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createClients } from '../../../functions/adapters/clients.ts';
import { ENV } from '../../../functions/shared/env.ts';
import type { LocalStack } from '../../../local/stack.ts';

/**
 * Separate processes against one local stack, for the fault tests that SIGKILL them: GPU workers as the
 * GPU task runs them (functions/worker/main.ts), and the queue consumers the Lambdas are
 * (./consumer.ts). A SIGKILL leaves no chance to hand anything back: what a killed Lambda or container
 * leaves is what the queues and the conditional writes must make good.
 */

/** A seeded generator, so that a failing run's schedule of kills can be replayed (KILL_SEED). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Spawns a TypeScript entry point with the stack's environment and `env` over it; its output is dropped,
 * or its stdout given as a pipe (`stdout: 'pipe'`), which the caller must read.
 */
export function spawnEntry(
  stack: LocalStack,
  entry: string,
  args: readonly string[],
  env: Record<string, string>,
  stdout: 'ignore' | 'pipe' = 'ignore',
): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { ...process.env, ...stack.env, POWERTOOLS_LOG_LEVEL: 'ERROR', ...env },
    stdio: ['ignore', stdout, 'ignore'],
  });
}

/**
 * Resolves once the worker process logs that it is ready (its model answered, it takes work from now
 * on); rejects if it exits first or after `timeoutMs`. Its log is read line by line as it comes, and to
 * its end, so the pipe never fills.
 */
function readyOf(worker: ChildProcess, timeoutMs = 120_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`worker ${worker.pid} not ready in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const exit = () => {
      clearTimeout(timer);
      reject(new Error(`worker ${worker.pid} exited before it was ready`));
    };
    worker.once('exit', exit);
    worker.stdout?.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (lines.some((line) => line.includes('"worker ready"'))) {
        clearTimeout(timer);
        worker.off('exit', exit);
        resolve();
      }
    });
  });
}

/**
 * A GPU worker process with one model slot on `modelUrl`. Its chunks stay hidden 3 s after it dies
 * (FRAMECAST_WORKER_VISIBILITY_SECONDS), so a run with many kills takes minutes, and it may try a
 * frame 6 times (the most the frame queue's maxReceiveCount of 8 leaves room for).
 */
export function startWorker(stack: LocalStack, modelUrl = stack.modelUrl): WorkerProcess {
  const worker = spawnEntry(
    stack,
    'functions/worker/main.ts',
    [],
    {
      [ENV.modelUrl]: modelUrl,
      [ENV.workerConcurrency]: '1',
      [ENV.workerVisibilitySeconds]: '3',
      [ENV.maxAttempts]: '6',
      // Its info lines, for `ready`.
      POWERTOOLS_LOG_LEVEL: 'INFO',
    },
    'pipe',
  );
  const ready = readyOf(worker);
  // Not a failure of its own: a worker killed before it was ready is one a test meant to kill.
  ready.catch(() => undefined);
  return Object.assign(worker, { ready });
}

/** A worker process and when it is ready: its model answered, and it takes work from then on. */
export type WorkerProcess = ChildProcess & { readonly ready: Promise<void> };

export const exited = (p: ChildProcess) =>
  p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => p.once('exit', () => resolve()));

export async function killAll(processes: readonly ChildProcess[]): Promise<void> {
  for (const p of processes) p.kill('SIGKILL');
  await Promise.all(processes.map(exited));
}

/** Every key under the job's output prefix. */
export async function keysUnder(stack: LocalStack, outputPrefix: string): Promise<string[]> {
  const prefix = outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
  const s3 = createClients().s3;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: stack.env[ENV.bucket], Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}
