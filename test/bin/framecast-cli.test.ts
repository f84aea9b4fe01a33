import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramecastClient, type Job } from '../../client/index.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { pngFrame, sha256Hex } from '../support/images.ts';

/** The `framecast` CLI as a process (bin/framecast.mjs, as `npx framecast` runs it) against the local stack. */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/framecast.mjs');

let stack: LocalStack;
let api: FramecastClient;
let work: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: work,
        env: {
          PATH: process.env.PATH,
          HOME: work,
          XDG_CONFIG_HOME: join(work, 'config'),
          FRAMECAST_API_URL: stack.url,
          FRAMECAST_API_KEY: stack.apiKey,
          ...env,
        },
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => ok({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs with --json and answers the parsed stdout: it must be one JSON document and nothing else. */
async function runJson<T = Record<string, unknown>>(args: string[], expectCode = 0): Promise<T> {
  const r = await run(['--json', ...args]);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(expectCode);
  return JSON.parse(r.stdout) as T;
}

beforeAll(async () => {
  stack = await startLocalStack({ worker: { retryBaseMs: 5 }, referenceModel: { failFrames: [3] } });
  api = new FramecastClient({ baseUrl: stack.url, apiKey: stack.apiKey });
  work = mkdtempSync(join(tmpdir(), 'framecast-cli-'));
});
afterAll(async () => {
  await stack?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function verifyDir(dir: string, job: Job) {
  const frames = await api.allFrames(job.id);
  for (const f of frames) {
    const bytes = await readFile(join(dir, `${job.shot}.${f.frame}.png`));
    expect(sha256Hex(bytes), `frame ${f.frame}`).toBe(f.sha256);
  }
  return frames.length;
}

describe('framecast submit --wait and download', () => {
  it('makes a shot, downloads it verified, downloads nothing the second time, and resumes', async () => {
    const job = await runJson<Job>([
      'submit',
      '--shot',
      'CLI_SH010',
      '--prompt',
      'a crane in fog',
      '--frames',
      '1001-1012',
      '--size',
      '64x64',
      '--seed',
      '7',
      '--wait',
    ]);
    expect(job).toMatchObject({ status: 'succeeded', seed: 7, frames: { total: 12, succeeded: 12 } });

    const dir = join(work, 'out', 'CLI_SH010');
    const first = await runJson(['download', job.id, '--out', dir]);
    expect(first).toMatchObject({ frames: 12, downloaded: 12, skipped: 0 });
    expect(await verifyDir(dir, job)).toBe(12);

    const second = await runJson(['download', job.id, '--out', dir]);
    expect(second).toMatchObject({ frames: 12, downloaded: 0, skipped: 12, bytes: 0 });

    // What an interrupted run leaves: frames missing, a partial file, a frame cut short.
    await rm(join(dir, 'CLI_SH010.1003.png'));
    await rm(join(dir, 'CLI_SH010.1010.png'));
    await writeFile(join(dir, 'CLI_SH010.1010.png.part'), 'half a frame');
    const cut = join(dir, 'CLI_SH010.1007.png');
    await writeFile(cut, (await readFile(cut)).subarray(0, 100));
    const resumed = await runJson(['download', job.id, '--out', dir]);
    expect(resumed).toMatchObject({ frames: 12, downloaded: 3, skipped: 9 });
    expect(await verifyDir(dir, job)).toBe(12);
    expect((await readdir(dir)).filter((n) => n.endsWith('.part'))).toEqual([]);
  });

  it('exits 1 with the job when it fails, and names the failed frames', async () => {
    const failed = await runJson<Job>(
      ['submit', '--shot', 'CLI_FAIL', '--prompt', 'p', '--frames', '1-4', '--size', '64x64', '--wait'],
      1,
    );
    expect(failed).toMatchObject({ status: 'failed', failedFrames: [3] });
    const human = await run([
      'submit',
      '--shot',
      'CLI_FAIL',
      '--prompt',
      'p',
      '--frames',
      '3',
      '--size',
      '64x64',
      '--wait',
    ]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('failed frames: 3');
  });
});

describe('framecast download, interrupted', () => {
  it('resumes after the process is killed mid-way, fetching only the frames not yet verified', async () => {
    const job = await api.createJob({
      shot: 'CLI_KILL',
      prompt: 'p',
      frames: { start: 1001, end: 1096 },
      width: 256,
      height: 144,
    });
    expect((await api.waitForJob(job.id, { intervalMs: 100 })).status).toBe('succeeded');
    const dir = join(work, 'out', 'CLI_KILL');
    await mkdir(dir, { recursive: true });
    const child = spawn(process.execPath, [BIN, 'download', job.id, '--out', dir, '--concurrency', '1'], {
      env: {
        PATH: process.env.PATH,
        HOME: work,
        FRAMECAST_API_URL: stack.url,
        FRAMECAST_API_KEY: stack.apiKey,
      },
      stdio: 'ignore',
    });
    const exited = new Promise((ok) => child.on('exit', ok));
    const complete = async () => (await readdir(dir)).filter((n) => n.endsWith('.png')).length;
    while ((await complete()) < 3) await new Promise((ok) => setTimeout(ok, 2));
    child.kill('SIGKILL');
    await exited;
    const kept = await complete();
    expect(kept).toBeLessThan(96);
    const resumed = await runJson(['download', job.id, '--out', dir]);
    expect(resumed).toMatchObject({ frames: 96, downloaded: 96 - kept, skipped: kept });
    expect(await verifyDir(dir, await api.getJob(job.id))).toBe(96);
  });
});

describe('framecast upload', () => {
  it('sends a 24-frame sequence once, in each pattern form, and a shot file uses it by pattern', async () => {
    const plates = join(work, 'plates');
    await mkdir(plates, { recursive: true });
    for (let i = 0; i < 24; i++)
      await writeFile(join(plates, `EP101_SH040_PL01.${1001 + i}.png`), await pngFrame(64, 64, 500 + i));
    const first = await runJson(['upload', join(plates, 'EP101_SH040_PL01.####.png')]);
    expect(first).toMatchObject({
      files: 24,
      uploaded: 24,
      asset: { name: 'EP101_SH040_PL01', status: 'ready', frames: { start: 1001, end: 1024 }, width: 64 },
    });
    expect(first.bytesSent).toBeGreaterThan(0);
    for (const pattern of ['EP101_SH040_PL01.%04d.png', 'EP101_SH040_PL01.[1001-1024].png']) {
      const again = await runJson(['upload', join(plates, pattern), '--name', 'plate_again']);
      expect(again).toMatchObject({ files: 24, uploaded: 0, bytesSent: 0, asset: { status: 'ready' } });
    }

    const shot = join(work, 'shot.yaml');
    await writeFile(
      shot,
      [
        'shot: CLI_SH040',
        'prompt: dust over the plate',
        'frames: {start: 1001, end: 1004}',
        'width: 64',
        'height: 64',
        'params: {strength: 0.5}',
        'inputs:',
        `  image: {pattern: "${join(plates, 'EP101_SH040_PL01.####.png')}", offset: 2}`,
        '',
      ].join('\n'),
    );
    const job = await runJson<Job>(['submit', shot, '--wait']);
    expect(job).toMatchObject({ status: 'succeeded', shot: 'CLI_SH040', inputs: { image: { offset: 2 } } });
  });

  it('refuses a range with a frame missing as a usage error', async () => {
    const r = await run(['upload', join(work, 'plates', 'EP101_SH040_PL01.[1001-1030].png')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing frames 1025');
  });
});

describe('framecast --json', () => {
  it('prints one JSON document on stdout for every command', async () => {
    const submitted = await runJson<Job>([
      'submit',
      '--shot',
      'CLI_JSON',
      '--prompt',
      'p',
      '--frames',
      '1-2',
      '--size',
      '64x64',
      '--webhook',
      'http://127.0.0.1:9/hook',
    ]);
    expect(submitted.status).toBe('queued');
    expect((await runJson<Job>(['status', submitted.id])).id).toBe(submitted.id);
    expect((await runJson<{ jobs: Job[] }>(['list', '--shot', 'CLI_JSON'])).jobs[0]!.id).toBe(submitted.id);
    await api.waitForJob(submitted.id, { intervalMs: 100 });
    const events = await runJson<{ events: { id: string }[] }>(['events', submitted.id]);
    expect(events.events.length).toBeGreaterThan(0);
    expect(await runJson(['redeliver', events.events[0]!.id])).toHaveProperty('event', events.events[0]!.id);
    expect(await runJson(['cancel', submitted.id], 1)).toMatchObject({ error: { status: 409 } });
    expect(await runJson(['assets'])).toHaveProperty('assets');
    const endpoint = await runJson<{ id: string }>([
      'webhooks',
      'add',
      'http://127.0.0.1:9/hook',
      '--events',
      'job.succeeded,job.failed',
    ]);
    expect(endpoint).toMatchObject({ events: ['job.succeeded', 'job.failed'] });
    expect(
      (await runJson<{ endpoints: { id: string }[] }>(['webhooks', 'list'])).endpoints.map((e) => e.id),
    ).toContain(endpoint.id);
    const secret = await runJson<{ secret: string }>(['webhooks', 'secret']);
    const rotated = await runJson<{ secret: string; previousExpiresAt: string }>([
      'webhooks',
      'secret',
      '--rotate',
    ]);
    expect(rotated.secret).not.toBe(secret.secret);
    expect(await runJson(['webhooks', 'remove', endpoint.id])).toEqual({ removed: endpoint.id });
    expect(await runJson(['status', 'job_00000000000000000000000000'], 1)).toMatchObject({
      error: { status: 404, code: 'not_found' },
    });
  });
});

describe('framecast usage and connection', () => {
  it('exits 2 with a usage line on a bad argument, an unknown command or a missing connection', async () => {
    const bad = await run(['submit', '--shot', 'S', '--prompt', 'p', '--frames', 'abc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('usage: framecast submit');
    expect(bad.stdout).toBe('');
    expect((await run(['frobnicate'])).code).toBe(2);
    const missing = await run(['submit', '--prompt', 'p', '--frames', '1-2']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--shot');
    const unconnected = await run(['list'], { FRAMECAST_API_URL: undefined });
    expect(unconnected.code).toBe(2);
    expect(unconnected.stderr).toContain('no API URL');
    expect(unconnected.stderr).not.toMatch(/\n\s+at /);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 ok');
  });

  it('shows the API error without a stack trace', async () => {
    const r = await run(['status', 'job_00000000000000000000000000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('framecast: not_found: job was not found (HTTP 404)\n');
  });

  it('reads the profile file under XDG_CONFIG_HOME, and flags win over it', async () => {
    await mkdir(join(work, 'config', 'framecast'), { recursive: true });
    await writeFile(
      join(work, 'config', 'framecast', 'config.json'),
      JSON.stringify({ apiUrl: stack.url, apiKey: stack.apiKey }),
    );
    const fromFile = await run(['--json', 'list', '--limit', '1'], {
      FRAMECAST_API_URL: undefined,
      FRAMECAST_API_KEY: undefined,
    });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const wrongKey = await run(['--api-key', 'fc_not_a_key_of_this_stack', 'list'], {
      FRAMECAST_API_KEY: undefined,
    });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('unauthorized');
  });
});
