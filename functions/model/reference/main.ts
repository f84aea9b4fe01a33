import { isMainThread } from 'node:worker_threads';
import { REFERENCE_DESCRIPTION, startReferenceModel } from './server.ts';

/**
 * The reference model's container entry point. Settings come from the environment under the names a Cog
 * image reads: PORT (default 5000), COG_MAX_CONCURRENCY (default 1), plus HOST (default 0.0.0.0, so the
 * worker in the same task reaches it) and FRAMECAST_REFERENCE_OUTPUT (`images`, the default: a list of
 * PNGs; `video`: one lossless video per prediction, as a video model answers).
 *
 * On SIGTERM it stops taking predictions but lets running ones finish for up to 25 s: ECS stops the worker
 * and the model container together, and the worker may still be waiting for a frame (ECS's default
 * stopTimeout is 30 s).
 */

const DRAIN_MS = 25_000;

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return n;
}

function choiceFromEnv<T extends string>(name: string, choices: readonly T[]): T {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return choices[0]!;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new Error(`${name} must be one of ${choices.join(', ')}, not ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

const log = (message: string, fields: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ level: 'INFO', service: 'reference-model', message, ...fields }));

async function main(): Promise<void> {
  const port = intFromEnv('PORT', 5000, 0, 65535);
  const concurrency = intFromEnv('COG_MAX_CONCURRENCY', 1, 1, 64);
  const output = choiceFromEnv('FRAMECAST_REFERENCE_OUTPUT', ['images', 'video'] as const);
  const host = process.env.HOST || '0.0.0.0';
  const model = await startReferenceModel({ port, host, concurrency, output });
  log('listening', { url: model.url, concurrency, output, description: REFERENCE_DESCRIPTION });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal, ...model.stats() });
    model.close({ drainMs: DRAIN_MS }).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

// A bundled build runs this same file in each render thread (see render-thread.ts); only the main thread
// serves.
if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
