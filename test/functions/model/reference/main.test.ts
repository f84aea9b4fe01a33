import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../../../../functions/model/reference/main.ts', import.meta.url));

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Runs the container entry point as the container would, with settings from the environment. */
function run(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const listening = (async () => {
    while (!stdout.includes('"listening"')) {
      if (child.exitCode !== null) throw new Error(`exited early: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return JSON.parse(stdout.split('\n').find((l) => l.includes('"listening"'))!) as {
      url: string;
      concurrency: number;
    };
  })();
  // A test that expects the process to fail never awaits `listening`: its rejection is not an error.
  listening.catch(() => undefined);
  return { child, exited, listening, output: () => ({ stdout, stderr }) };
}

async function healthOf(url: string): Promise<{ status: string; slots: { busy: number } }> {
  return (await (await fetch(`${url}/health-check`)).json()) as { status: string; slots: { busy: number } };
}

describe('the reference model container entry point', () => {
  it('serves on the PORT, HOST and COG_MAX_CONCURRENCY it is given, and finishes running work on SIGTERM', async () => {
    const model = run({ PORT: '0', HOST: '127.0.0.1', COG_MAX_CONCURRENCY: '2' });
    const { url, concurrency } = await model.listening;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(concurrency).toBe(2);
    while ((await healthOf(url)).status !== 'READY') await new Promise((resolve) => setTimeout(resolve, 20));

    const frame = fetch(`${url}/predictions/last-frame`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        input: { prompt: 'the last frame before scale-in', seed: 1, width: 4096, height: 2304 },
      }),
    });
    while ((await healthOf(url)).slots.busy === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    model.child.kill('SIGTERM');

    const answered = (await (await frame).json()) as { status: string };
    expect(answered.status).toBe('succeeded');
    expect(await model.exited).toBe(0);
    expect(model.output().stdout).toMatch(/"stopping".*"signal":"SIGTERM"/);
  });

  it('answers each prediction with one video when FRAMECAST_REFERENCE_OUTPUT is video', async () => {
    const model = run({ PORT: '0', HOST: '127.0.0.1', FRAMECAST_REFERENCE_OUTPUT: 'video' });
    const { url } = await model.listening;
    const document = (await (await fetch(`${url}/openapi.json`)).json()) as {
      components: { schemas: object };
    };
    expect(document.components.schemas).toMatchObject({ Output: { type: 'string', format: 'uri' } });
    while ((await healthOf(url)).status !== 'READY') await new Promise((resolve) => setTimeout(resolve, 20));
    const res = await fetch(`${url}/predictions/window`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: 'a window', seed: 1, width: 64, height: 64, num_frames: 3 } }),
    });
    expect(((await res.json()) as { output: string }).output).toMatch(/^data:video\/x-matroska;base64,/);
    model.child.kill('SIGTERM');
    expect(await model.exited).toBe(0);
  });

  it('refuses to start with an output it does not make, naming the variable', async () => {
    const model = run({ PORT: '0', FRAMECAST_REFERENCE_OUTPUT: 'gif' });
    expect(await model.exited).toBe(1);
    expect(model.output().stderr).toMatch(
      /FRAMECAST_REFERENCE_OUTPUT must be one of images, video, not "gif"/,
    );
  });

  it('refuses to start with a setting that is not a number, naming the variable', async () => {
    const model = run({ PORT: '0', COG_MAX_CONCURRENCY: 'lots' });
    expect(await model.exited).toBe(1);
    expect(model.output().stderr).toMatch(/COG_MAX_CONCURRENCY must be an integer/);
  });
});
