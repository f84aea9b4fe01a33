import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FramecastApiError, FramecastClient, type Job } from '../../client/index.ts';
import { clearKeyCache } from '../../functions/api/http.ts';
import { manifestKey } from '../../functions/core/frames.ts';
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
  work = mkdtempSync(join(tmpdir(), 'framecast-cli-'));
  stack = await startLocalStack({
    worker: { retryBaseMs: 5 },
    referenceModel: { failFrames: [3] },
    // Where `framecast keys` finds the stack, as `npm run dev` writes it, under the CLI's working folder.
    connectionFile: join(work, '.framecast', 'local.json'),
  });
  api = new FramecastClient({ baseUrl: stack.url, apiKey: stack.apiKey });
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
    expect(first).toMatchObject({ frames: 12, downloaded: 12, skipped: 0, verifiedAgainst: 'manifest' });
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

  it('checks each file against the manifest of an ended job, and refuses one the manifest disagrees with', async () => {
    const job = await api.createJob({
      shot: 'CLI_MANIFEST',
      prompt: 'p',
      frames: { start: 1001, end: 1003 },
      width: 64,
      height: 64,
    });
    const done = await api.waitForJob(job.id, { intervalMs: 100 });
    const key = manifestKey('dev', done.shot, done.id);
    const manifest = JSON.parse(Buffer.from((await stack.app.frameStore.getFile(key))!).toString()) as {
      frames: { frame: number; sha256: string }[];
    };
    expect(manifest.frames.map((f) => f.frame)).toEqual([1001, 1002, 1003]);
    // A manifest that records another hash for frame 1002 than the listing: the download stops, naming both.
    await stack.app.frameStore.putJson(key, {
      ...manifest,
      frames: manifest.frames.map((f) => (f.frame === 1002 ? { ...f, sha256: '0'.repeat(64) } : f)),
    });
    const refused = await run(['download', done.id, '--out', join(work, 'out', 'CLI_MANIFEST')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `frame 1002: the listing says SHA-256 ${manifest.frames[1]!.sha256}, the manifest ${'0'.repeat(64)}`,
    );
    // Without a manifest (removed here; a job canceled before it ran has none) the listing is used.
    await stack.app.frameStore.delete(key);
    expect(await runJson(['download', done.id, '--out', join(work, 'out', 'CLI_MANIFEST')])).toMatchObject({
      frames: 3,
      downloaded: 3,
      verifiedAgainst: 'listing',
    });
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

describe('framecast sync', () => {
  it('fills the folder while the job runs and ends with it, every stored frame verified', async () => {
    const job = await api.createJob({
      shot: 'CLI_SYNC',
      prompt: 'p',
      frames: { start: 1001, end: 3000 },
      width: 64,
      height: 64,
    });
    const dir = join(work, 'out', 'CLI_SYNC');
    const syncing = run(['--json', 'sync', job.id, '--out', dir, '--interval', '100']);
    const pngs = async () => (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.png')).length;
    while ((await pngs()) < 2) await new Promise((ok) => setTimeout(ok, 20));
    // Frames were in the folder while the job still ran: canceling it now succeeds.
    expect((await api.cancelJob(job.id)).status).toBe('canceled');
    const r = await syncing;
    expect(r.code, r.stderr).toBe(1);
    const summary = JSON.parse(r.stdout) as {
      frames: number;
      downloaded: number;
      status: string;
      passes: number;
    };
    expect(summary.status).toBe('canceled');
    expect(summary.passes).toBeGreaterThan(1);
    const stored = (await api.allFrames(job.id)).filter((f) => f.status === 'succeeded');
    expect(summary.frames).toBe(stored.length);
    expect(summary.downloaded).toBe(stored.length);
    for (const f of stored)
      expect(sha256Hex(await readFile(join(dir, `CLI_SYNC.${f.frame}.png`))), `frame ${f.frame}`).toBe(
        f.sha256,
      );
    expect(await pngs()).toBe(stored.length);
  });

  it('on an ended job, checks what is there against the manifest and fetches nothing more', async () => {
    const job = await api.createJob({
      shot: 'CLI_SYNC2',
      prompt: 'p',
      frames: { start: 1001, end: 1004 },
      width: 64,
      height: 64,
    });
    await api.waitForJob(job.id, { intervalMs: 100 });
    const dir = join(work, 'out', 'CLI_SYNC2');
    expect(await runJson(['download', job.id, '--out', dir])).toMatchObject({ downloaded: 4 });
    expect(await runJson(['sync', job.id, '--out', dir])).toMatchObject({
      status: 'succeeded',
      frames: 4,
      downloaded: 0,
      skipped: 4,
      passes: 1,
      verifiedAgainst: 'manifest',
    });
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
    const trail = await runJson<{ records: { kind: string; jobId: string }[] }>(['audit']);
    expect(trail.records.filter((r) => r.jobId === submitted.id).map((r) => r.kind)).toEqual([
      'job.created',
      'job.finished',
    ]);
    const csv = await run(['audit', '--csv', '--from', '2000-01-01']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.startsWith('"id","at","kind",')).toBe(true);
    expect(csv.stdout.split('\r\n').filter((line) => line.startsWith('"id"'))).toHaveLength(1);
    expect(csv.stdout).toContain(submitted.id);
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

describe('framecast usage and budget', () => {
  it("prints the tenant's spend by shot, and sets a budget with an admin key only", async () => {
    const submitted = await runJson<Job>([
      'submit',
      '--shot',
      'CLI_SPEND',
      '--prompt',
      'p',
      '--frames',
      '1-2',
      '--size',
      '64x64',
      '--wait',
    ]);
    expect(submitted.status).toBe('succeeded');
    const usage = await runJson<{ groups: { key: string; frames: number; usd: number }[] }>([
      'usage',
      '--group-by',
      'shot',
    ]);
    expect(usage.groups.find((g) => g.key === 'CLI_SPEND')).toMatchObject({ frames: 2 });
    expect((await run(['usage', '--group-by', 'week'])).code).toBe(2);
    expect(await runJson(['budget', 'set', 'dev', '--limit-usd', '100'], 1)).toMatchObject({
      error: { status: 403 },
    });
    const admin = await stack.createApiKey('ops', ['admin', 'jobs:read']);
    const r = await run(['--json', 'budget', 'set', 'dev', '--limit-usd', '100'], {
      FRAMECAST_API_KEY: admin,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tenant: 'dev', limitUsd: 100, level: 'ok' });
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

  it('passes --start-by to the API, which refuses a deadline in the past naming the field', async () => {
    const r = await run([
      'submit',
      '--shot',
      'CLI_LATE',
      '--prompt',
      'p',
      '--frames',
      '1-2',
      '--size',
      '64x64',
      '--start-by',
      '2001-01-01T00:00:00Z',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('body.startBy: must be in the future');
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

describe('framecast keys', () => {
  interface Created {
    key: string;
    id: string;
    tenant: string;
    scopes: string[];
  }

  it('makes a key in the running local stack that works, sees only its tenant, and lists by id', async () => {
    const created = await runJson<Created>([
      'keys',
      'create',
      '--tenant',
      'cli-studio',
      '--scopes',
      'jobs:read,jobs:write',
      '--name',
      'comp team',
    ]);
    expect(created).toMatchObject({ tenant: 'cli-studio', scopes: ['jobs:read', 'jobs:write'] });
    expect(created.key).toMatch(/^fc_[A-Za-z0-9_-]{43}$/);
    expect(created.id).toMatch(/^[0-9a-f]{12}$/);

    // The human form prints the key alone on stdout, for KEY=$(framecast keys create ...).
    const human = await run(['keys', 'create', '--tenant', 'cli-other']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^fc_[A-Za-z0-9_-]{43}\n$/);
    expect(human.stderr).toContain('shown once');

    const theirs = await api.createJob({
      shot: 'CLI_KEYS',
      prompt: 'p',
      frames: { start: 1, end: 1 },
      width: 64,
      height: 64,
    });
    const withKey = (args: string[]) => run(['--json', ...args], { FRAMECAST_API_KEY: created.key });
    const mine = await withKey([
      'submit',
      '--shot',
      'CLI_KEYS',
      '--prompt',
      'p',
      '--frames',
      '1-2',
      '--size',
      '64x64',
    ]);
    expect(mine.code, mine.stderr).toBe(0);
    const myJob = JSON.parse(mine.stdout) as Job;
    const listed = JSON.parse((await withKey(['list', '--shot', 'CLI_KEYS'])).stdout) as { jobs: Job[] };
    expect(listed.jobs.map((j) => j.id)).toEqual([myJob.id]);
    const other = await withKey(['status', theirs.id]);
    expect(other.code).toBe(1);
    expect(JSON.parse(other.stdout)).toMatchObject({ error: { status: 404, code: 'not_found' } });
    // The key has no webhooks:manage scope.
    expect(JSON.parse((await withKey(['webhooks', 'list'])).stdout)).toMatchObject({
      error: { status: 403 },
    });

    const all = await runJson<{ keys: Record<string, unknown>[] }>(['keys', 'list']);
    expect(all.keys.map((k) => k.id)).toContain(created.id);
    const studio = await runJson<{ keys: Record<string, unknown>[] }>([
      'keys',
      'list',
      '--tenant',
      'cli-studio',
    ]);
    expect(studio.keys).toEqual([
      expect.objectContaining({ id: created.id, tenant: 'cli-studio', name: 'comp team' }),
    ]);
    // Neither the key nor its hash is ever listed.
    expect(JSON.stringify(all)).not.toContain(created.key);
    expect(studio.keys[0]).not.toHaveProperty('hash');
  });

  it('revokes a key by id or by the key, after which the API answers a clear 401', async () => {
    const created = await runJson<Created>(['keys', 'create', '--tenant', 'cli-revoked']);
    const used = new FramecastClient({ baseUrl: stack.url, apiKey: created.key });
    expect((await used.listJobs()).jobs).toEqual([]);

    const revoked = await runJson<{ id: string; revokedAt: string }>(['keys', 'revoke', created.id]);
    expect(revoked).toMatchObject({ id: created.id, revokedAt: expect.any(String) });
    expect(await runJson(['keys', 'list', '--tenant', 'cli-revoked'])).toMatchObject({
      keys: [{ id: created.id, revokedAt: revoked.revokedAt }],
    });
    // The API process trusted the key it had looked up for KEY_CACHE_MS; the cache running out is this.
    clearKeyCache();
    const refused = await run(['list'], { FRAMECAST_API_KEY: created.key });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('unauthorized: missing, unknown or revoked API key (HTTP 401)');
    expect(refused.stderr).toContain('a revoked key needs a new one');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    await expect(used.listJobs()).rejects.toMatchObject({ status: 401 } satisfies Partial<FramecastApiError>);

    // A key never used is refused at once; revoking by the key itself works too, and twice is harmless.
    const second = await runJson<Created>(['keys', 'create', '--tenant', 'cli-revoked']);
    expect((await run(['keys', 'revoke', second.key])).code).toBe(0);
    expect(await runJson(['keys', 'revoke', second.key])).toMatchObject({ id: second.id });
    expect((await run(['list'], { FRAMECAST_API_KEY: second.key })).code).toBe(1);
  });

  it('finds a table by --table or FRAMECAST_TABLE with the standard AWS settings, as for a deployed stack', async () => {
    const aws = {
      AWS_REGION: stack.env.AWS_REGION,
      AWS_ACCESS_KEY_ID: stack.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: stack.env.AWS_SECRET_ACCESS_KEY,
      AWS_ENDPOINT_URL_DYNAMODB: stack.env.AWS_ENDPOINT_URL_DYNAMODB,
    };
    const elsewhere = join(work, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    const byEnv = await run(['--json', 'keys', 'create', '--tenant', 'cli-deployed', '--local', elsewhere], {
      ...aws,
      FRAMECAST_TABLE: stack.env.FRAMECAST_TABLE,
    });
    expect(byEnv.code, byEnv.stderr).toBe(0);
    const { key } = JSON.parse(byEnv.stdout) as Created;
    expect((await new FramecastClient({ baseUrl: stack.url, apiKey: key }).listJobs()).jobs).toEqual([]);
    const byFlag = await run(
      ['--json', 'keys', 'list', '--tenant', 'cli-deployed', '--table', stack.env.FRAMECAST_TABLE!],
      aws,
    );
    expect(JSON.parse(byFlag.stdout).keys).toHaveLength(1);

    // No table and no local stack here: a usage error that says where a table comes from.
    const none = await run(['keys', 'list', '--local', elsewhere]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--table');
    // The file of a stack killed without its stop: said so, rather than a connection refused.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(
      join(elsewhere, 'local.json'),
      JSON.stringify({
        apiUrl: 'http://127.0.0.1:9',
        dynamodb: { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', table: 'framecast-local' },
        pid: gone,
      }),
    );
    const stale = await run(['keys', 'list', '--local', elsewhere]);
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain(`(process ${gone}) is not running`);
    const badScope = await run(['keys', 'create', '--tenant', 'x', '--scopes', 'jobs:admin']);
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toContain('unknown jobs:admin');
    expect((await run(['keys', 'revoke', 'nonsense'])).code).toBe(2);
  });
});
