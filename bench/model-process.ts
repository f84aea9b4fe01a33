import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/**
 * The reference model as its container runs it (functions/model/reference/main.ts), in a process of its
 * own: in production the model is another container, so its HTTP handling and its timers do not wait for
 * the worker's event loop, nor the worker's for its. Settings go in its environment, as in the container.
 */
export async function startModelProcess(settings: {
  concurrency: number;
  renderDelayMs: number;
}): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../functions/model/reference/main.ts', import.meta.url))],
    {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        COG_MAX_CONCURRENCY: String(settings.concurrency),
        FRAMECAST_REFERENCE_DELAY_MS: String(settings.renderDelayMs),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.once('exit', (code) =>
      reject(new Error(`the reference model exited (${code}) before it listened`)),
    );
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      for (const line of seen.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as { message?: string; url?: string };
          if (entry.message === 'listening' && entry.url) resolve(entry.url);
        } catch {
          // a line still being written
        }
      }
    });
  });
  child.stdout.resume();
  return {
    url,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
