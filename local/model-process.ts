import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startReferenceModel } from '../functions/model/reference/server.ts';

/**
 * The reference model in a process of its own: in production the model is another container, so its HTTP
 * handling and its timers do not wait for the worker's event loop, nor the worker's for its. The child
 * (this file, forked) serves as the container's entry point does, with the settings given, and leaves
 * when its parent goes, however the parent ends.
 */
export async function startModelProcess(settings: {
  concurrency: number;
  renderDelayMs: number;
}): Promise<{ url: string; close(): Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, FRAMECAST_MODEL_PROCESS: JSON.stringify(settings) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`the reference model exited (${code}) before it listened`)),
    );
    child.once('message', (message: { url: string }) => resolve(message.url));
  });
  return {
    url,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}

const settings = process.env.FRAMECAST_MODEL_PROCESS;
if (settings !== undefined && process.send) {
  const model = await startReferenceModel({ port: 0, ...(JSON.parse(settings) as object) });
  process.send({ url: model.url });
  process.once('disconnect', () => {
    void model.close().finally(() => process.exit(0));
  });
}
