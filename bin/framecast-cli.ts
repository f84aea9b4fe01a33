import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  type AuditRecord,
  FramecastApiError,
  FramecastClient,
  FramecastNetworkError,
  type Job,
  type JobRequest,
  type UsageReport,
  type WebhookEndpointInput,
} from '../client/index.ts';
import { EVENT_TYPES, USAGE_GROUPS } from '../functions/core/vocabulary.ts';
import { resolveConnection } from './cli/connection.ts';
import { SequenceError } from './cli/sequence.ts';
import { type DownloadResult, downloadJob, type Progress, syncJob, uploadSequence } from './cli/transfer.ts';

/**
 * `framecast`: the studio's and the vendor's command line over the typed client (client/index.ts).
 * Exit codes: 0 ok; 1 the job failed or was canceled, or the API (or the network) refused; 2 usage.
 * `--json` prints one JSON document on stdout and nothing else; progress bars go to stderr (a terminal only).
 */

class UsageError extends Error {}
/** An outcome that is not an error of the CLI but still exits 1 (a job that failed or was canceled). */
class Outcome extends Error {}

interface Globals {
  apiUrl?: string;
  apiKey?: string;
  profile?: string;
  json?: boolean;
}

const program = new Command('framecast')
  .description(
    'Framecast from the command line: submit shots, upload plates, download and sync frames, manage webhooks and API keys',
  )
  .option('--api-url <url>', 'the API (or FRAMECAST_API_URL, or the profile file)')
  .option('--api-key <key>', 'the API key fc_... (or FRAMECAST_API_KEY, or the profile file)')
  .option('--profile <name>', 'a named profile of $XDG_CONFIG_HOME/framecast/config.json')
  .option('--json', 'print machine-readable JSON on stdout and nothing else')
  .addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 a job failed or was canceled or the API refused, 2 usage.\nProfile file: $XDG_CONFIG_HOME/framecast/config.json (default ~/.config/framecast/config.json): {"apiUrl": "...", "apiKey": "fc_..."}',
  )
  .exitOverride();

const globals = (): Globals => program.opts<Globals>();
const json = () => globals().json === true;

async function connect(): Promise<FramecastClient> {
  const g = globals();
  const c = await resolveConnection({
    ...(g.apiUrl && { apiUrl: g.apiUrl }),
    ...(g.apiKey && { apiKey: g.apiKey }),
    ...(g.profile && { profile: g.profile }),
  }).catch((err: Error) => {
    throw new UsageError(err.message);
  });
  return new FramecastClient({ baseUrl: c.apiUrl, apiKey: c.apiKey });
}

/** Prints the result: JSON on --json, else the human line(s). */
function print(value: unknown, human: () => string) {
  if (json()) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(`${human()}\n`);
}

/** A progress bar on stderr when it is a terminal and --json is off. */
function bar(label: string): Progress {
  if (!process.stderr.isTTY) return { start() {}, tick() {}, stop() {} };
  const b = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted}`,
    hideCursor: true,
  });
  return {
    start: (total) => b.start(total, 0),
    tick: (n = 1) => b.increment(n),
    stop: () => b.stop(),
  };
}

// ---- argument parsers -----------------------------------------------------------------------------------

const int = (name: string) => (v: string) => {
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be an integer, not "${v}"`);
  return Number(v);
};

function frameRange(v: string): { start: number; end: number } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`frames must be START-END or one frame, e.g. 1001-1048, not "${v}"`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (end < start) throw new InvalidArgumentError(`frames ${v} end before they start`);
  return { start, end };
}

function size(v: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/i.exec(v);
  if (!m) throw new InvalidArgumentError(`size must be WIDTHxHEIGHT, e.g. 1920x1080, not "${v}"`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

const collect =
  <T>(parse: (v: string) => T) =>
  (v: string, acc: T[] = []) => [...acc, parse(v)];

function param(v: string): [string, unknown] {
  const i = v.indexOf('=');
  if (i < 1) throw new InvalidArgumentError(`--param must be key=value, not "${v}"`);
  const raw = v.slice(i + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a bare string
  }
  return [v.slice(0, i), value];
}

interface InputFlag {
  name: string;
  source: string;
  offset?: number;
}
function input(v: string): InputFlag {
  const m = /^([a-z][a-z0-9_]*)=(.+?)(?::(-?\d+))?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`--input must be name=ASSET|PATTERN[:offset], not "${v}"`);
  return { name: m[1]!, source: m[2]!, ...(m[3] !== undefined && { offset: Number(m[3]) }) };
}

// ---- jobs -----------------------------------------------------------------------------------------------

interface SubmitFlags {
  shot?: string;
  prompt?: string;
  negativePrompt?: string;
  frames?: { start: number; end: number };
  size?: { width: number; height: number };
  seed?: number;
  model?: string;
  param?: [string, unknown][];
  input?: InputFlag[];
  window?: number;
  overlap?: number;
  chained?: boolean;
  parallel?: boolean;
  webhook?: string;
  priority?: number;
  startBy?: string;
  idempotencyKey?: string;
  wait?: boolean;
}

type ShotInput = string | { asset?: string; pattern?: string; offset?: number; outside?: 'error' | 'hold' };

async function readShotFile(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, 'utf8').catch((err: Error) => {
    throw new UsageError(`${path}: ${err.message}`);
  });
  try {
    // yaml is loaded for a YAML file only: most runs of the CLI have none.
    const value = ['.yaml', '.yml'].includes(extname(path).toLowerCase())
      ? (await import('yaml')).parse(text)
      : JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`${path}: ${(err as Error).message}`);
  }
}

/** An input's asset: an asset id as it is, a pattern uploaded first (content-addressed). */
async function resolveInput(api: FramecastClient, name: string, value: ShotInput) {
  const v = typeof value === 'string' ? { [value.startsWith('ast_') ? 'asset' : 'pattern']: value } : value;
  const { pattern, asset, ...rest } = v as { pattern?: string; asset?: string; offset?: number };
  if (asset) return { asset, ...rest };
  if (!pattern) throw new UsageError(`input ${name}: give an asset id (ast_...) or a file pattern`);
  const uploaded = await uploadSequence(api, pattern, { progress: bar(`upload ${name}`) });
  if (!json())
    process.stderr.write(
      `input ${name}: ${uploaded.asset.id} (${uploaded.files} files, ${uploaded.uploaded} uploaded)\n`,
    );
  return { asset: uploaded.asset.id, ...rest };
}

async function submit(file: string | undefined, flags: SubmitFlags) {
  const body: Record<string, unknown> = file ? await readShotFile(file) : {};
  if (flags.shot) body.shot = flags.shot;
  if (flags.prompt) body.prompt = flags.prompt;
  if (flags.negativePrompt) body.negativePrompt = flags.negativePrompt;
  if (flags.frames) body.frames = flags.frames;
  if (flags.size) Object.assign(body, flags.size);
  if (flags.seed !== undefined) body.seed = flags.seed;
  if (flags.model) body.model = flags.model;
  if (flags.priority !== undefined) body.priority = flags.priority;
  if (flags.startBy !== undefined) body.startBy = flags.startBy;
  if (flags.param?.length)
    body.params = { ...(body.params as object | undefined), ...Object.fromEntries(flags.param) };
  if (flags.chained && flags.parallel) throw new UsageError('--chained and --parallel: choose one');
  if (flags.chained) body.windowMode = 'chained';
  if (flags.parallel) body.windowMode = 'parallel';
  if (flags.window !== undefined || flags.overlap !== undefined)
    body.window = {
      ...(body.window as object | undefined),
      ...(flags.window !== undefined && { size: flags.window }),
      ...(flags.overlap !== undefined && { overlap: flags.overlap }),
    };
  if (flags.webhook) body.webhook = { url: flags.webhook };
  const inputs: Record<string, ShotInput> = { ...(body.inputs as Record<string, ShotInput> | undefined) };
  for (const i of flags.input ?? [])
    inputs[i.name] = {
      [i.source.startsWith('ast_') ? 'asset' : 'pattern']: i.source,
      ...(i.offset !== undefined && { offset: i.offset }),
    };
  for (const key of ['shot', 'prompt', 'frames'])
    if (body[key] === undefined) throw new UsageError(`submit needs --${key} (or a shot file that gives it)`);

  const api = await connect();
  if (Object.keys(inputs).length > 0) {
    const resolved: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(inputs)) resolved[name] = await resolveInput(api, name, value);
    body.inputs = resolved;
  }
  const job = await api.createJob(
    body as unknown as JobRequest,
    flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {},
  );
  if (!flags.wait) {
    print(job, () => `${job.id} ${job.status} ${job.shot} ${job.frames.start}-${job.frames.end}`);
    return;
  }
  if (!json())
    process.stderr.write(`${job.id} submitted: ${job.shot} ${job.frames.start}-${job.frames.end}\n`);
  const done = await waitWithBar(api, job);
  print(done, () => summary(done));
  if (done.status !== 'succeeded') throw new Outcome(`job ${done.id} ${done.status}`);
}

function summary(job: Job): string {
  const f = job.frames;
  const lines = [
    `${job.id} ${job.status}  shot ${job.shot}  frames ${f.start}-${f.end}  ` +
      `succeeded ${f.succeeded}  failed ${f.failed}  canceled ${f.canceled}  of ${f.total}`,
  ];
  if (job.failedFrames.length > 0) lines.push(`failed frames: ${job.failedFrames.join(', ')}`);
  if (job.failedWindow)
    lines.push(
      `failed window ${job.failedWindow.index} (${job.failedWindow.start}-${job.failedWindow.end}): ${job.failedWindow.error}`,
    );
  return lines.join('\n');
}

/** Polls the job with a live bar (frames done and failed, rate, ETA) until it has finished. */
async function waitWithBar(api: FramecastClient, job: Job): Promise<Job> {
  const show = process.stderr.isTTY === true;
  const b = show
    ? new SingleBar({
        stream: process.stderr,
        format: `${job.shot} [{bar}] {value}/{total} frames | failed {failed} | {rate} fr/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 20,
      })
    : undefined;
  const started = Date.now();
  b?.start(job.frames.total, 0, { failed: 0, rate: '0.0' });
  try {
    return await api.waitForJob(job.id, {
      intervalMs: 500,
      onUpdate: (j) => {
        const done = j.frames.succeeded + j.frames.failed + j.frames.canceled;
        const rate = (j.frames.succeeded + j.frames.failed) / Math.max(0.001, (Date.now() - started) / 1000);
        b?.update(done, { failed: j.frames.failed, rate: rate.toFixed(1) });
      },
    });
  } finally {
    b?.stop();
  }
}

// ---- commands -------------------------------------------------------------------------------------------

program
  .command('submit')
  .description('submit a shot, from flags or from a JSON or YAML shot file (flags override the file)')
  .argument('[file]', 'a shot file: the job request as JSON or YAML; inputs may name file patterns')
  .option('--shot <shot>', 'shot name, e.g. EP101_SH040')
  .option('--prompt <text>', 'the prompt')
  .option('--negative-prompt <text>', 'the negative prompt')
  .option('--frames <range>', 'frames START-END, inclusive, e.g. 1001-1048', frameRange)
  .option('--size <WxH>', 'width x height, e.g. 1920x1080', size)
  .option('--seed <n>', 'seed (uint32)', int('--seed'))
  .option('--model <name>', 'model (default reference)')
  .option('--priority <n>', 'priority 0-100: 67 and over high, 33 and under low', int('--priority'))
  .option('--start-by <time>', 'queue deadline, ISO 8601: frames not started by then are canceled')
  .option('--param <k=v>', 'a model parameter (value read as JSON if it parses); repeatable', collect(param))
  .option(
    '--input <name=ASSET|PATTERN[:offset]>',
    'a model input: an asset id, or a file pattern uploaded first (plates/X.####.png); repeatable',
    collect(input),
  )
  .option('--window <n>', 'window size, for a model with windows', int('--window'))
  .option('--overlap <k>', 'window overlap', int('--overlap'))
  .option('--chained', 'windows one after the other (the default)')
  .option('--parallel', 'windows at once, cross-faded')
  .option('--webhook <url>', "the job's own webhook")
  .option('--idempotency-key <key>', 'instead of a fresh one: resubmitting with it gives the same job')
  .option('--wait', 'wait for the job with a progress bar; exit 1 when it fails or is canceled')
  .action(submit);

program
  .command('status')
  .description("a job's state and counts")
  .argument('<job>', 'job id')
  .action(async (id: string) => {
    const job = await (await connect()).getJob(id);
    print(job, () => summary(job));
  });

program
  .command('list')
  .description("the tenant's jobs, newest first")
  .option('--shot <shot>', 'only this shot')
  .addOption(
    new Option('--status <status>', 'only this status').choices([
      'queued',
      'running',
      'succeeded',
      'failed',
      'canceled',
    ]),
  )
  .option('--limit <n>', 'at most this many', int('--limit'), 20)
  .action(async (o: { shot?: string; status?: Job['status']; limit: number }) => {
    const page = await (await connect()).listJobs({
      ...(o.shot && { shot: o.shot }),
      ...(o.status && { status: o.status }),
      limit: o.limit,
    });
    print(
      page,
      () =>
        page.jobs
          .map(
            (j) =>
              `${j.id}  ${j.status.padEnd(9)}  ${j.shot}  ${j.frames.start}-${j.frames.end}  ${j.createdAt}`,
          )
          .join('\n') || '(no jobs)',
    );
  });

program
  .command('cancel')
  .description('cancel a job')
  .argument('<job>', 'job id')
  .action(async (id: string) => {
    const job = await (await connect()).cancelJob(id);
    print(job, () => summary(job));
  });

program
  .command('events')
  .description("a job's webhook events and their deliveries")
  .argument('<job>', 'job id')
  .action(async (id: string) => {
    const events = await (await connect()).allEvents(id);
    print(
      { events },
      () =>
        events
          .map(
            (e) =>
              `${e.id}  ${e.type.padEnd(15)}  ${e.timestamp}  ${e.deliveries.map((d) => `${d.url}: ${d.status}`).join(', ') || '(no deliveries)'}`,
          )
          .join('\n') || '(no events)',
    );
  });

program
  .command('redeliver')
  .description('send an event again')
  .argument('<event>', 'event id')
  .action(async (id: string) => {
    const r = await (await connect()).redeliverEvent(id);
    print(r, () => `${r.event} redelivered to ${r.targets.join(', ') || '(no target)'}`);
  });

/** The human lines of a download or a sync. */
const transferLines = (r: DownloadResult) =>
  [
    `${r.frames} frames in ${r.dir}: ${r.downloaded} downloaded (${r.bytes} bytes), ${r.skipped} already there; ` +
      `each file checked against the ${r.verifiedAgainst === 'manifest' ? "job's manifest.json" : 'frames listing'}`,
    ...(r.notStored.length > 0
      ? [`not stored (failed, canceled or not done): ${r.notStored.join(', ')}`]
      : []),
  ].join('\n');

program
  .command('download')
  .description(
    "a job's frames under their sequence names, each verified by SHA-256 (against the job's manifest once it has ended); a rerun fetches only what is missing or wrong",
  )
  .argument('<job>', 'job id')
  .requiredOption('--out <dir>', 'folder to write to')
  .option('--concurrency <n>', 'downloads at once', int('--concurrency'), 8)
  .action(async (id: string, o: { out: string; concurrency: number }) => {
    const r = await downloadJob(await connect(), id, o.out, {
      concurrency: o.concurrency,
      progress: bar('download'),
    });
    print(r, () => transferLines(r));
  });

program
  .command('sync')
  .description(
    'keep a folder up to date while the job runs: new frames as they land, verified; ends when the job does (exit 1 if it failed or was canceled)',
  )
  .argument('<job>', 'job id')
  .requiredOption('--out <dir>', 'folder to write to')
  .option('--concurrency <n>', 'downloads at once', int('--concurrency'), 8)
  .option('--interval <ms>', 'time between polls, in milliseconds', int('--interval'), 1000)
  .action(async (id: string, o: { out: string; concurrency: number; interval: number }) => {
    if (o.interval < 100) throw new UsageError('--interval must be at least 100 ms');
    const r = await syncJob(await connect(), id, o.out, {
      concurrency: o.concurrency,
      intervalMs: o.interval,
      progress: bar('sync'),
    });
    print(r, () => `${r.job} ${r.status} after ${r.passes} polls\n${transferLines(r)}`);
    if (r.status !== 'succeeded') throw new Outcome(`job ${r.job} ${r.status}`);
  });

program
  .command('upload')
  .description(
    'upload a still or a sequence as an asset: plate.####.png, plate.%04d.png or plate.[1001-1048].png',
  )
  .argument('<pattern>', 'a file, or a sequence pattern')
  .option('--name <name>', 'asset name (default: from the pattern)')
  .option('--concurrency <n>', 'uploads at once', int('--concurrency'), 8)
  .action(async (pattern: string, o: { name?: string; concurrency: number }) => {
    const r = await uploadSequence(await connect(), pattern, {
      ...(o.name && { name: o.name }),
      concurrency: o.concurrency,
      progress: bar('upload'),
    });
    print(
      r,
      () =>
        `${r.asset.id} ${r.asset.status} ${r.asset.name}: ${r.files} files, ${r.uploaded} uploaded (${r.bytesSent} bytes)`,
    );
  });

program
  .command('assets')
  .description("the tenant's assets")
  .addOption(new Option('--status <status>', 'only this status').choices(['uploading', 'ready', 'failed']))
  .option('--limit <n>', 'at most this many', int('--limit'), 20)
  .action(async (o: { status?: 'uploading' | 'ready' | 'failed'; limit: number }) => {
    const page = await (await connect()).listAssets({
      ...(o.status && { status: o.status }),
      limit: o.limit,
    });
    print(
      page,
      () =>
        page.assets
          .map(
            (a) =>
              `${a.id}  ${a.status.padEnd(9)}  ${a.name}  ${a.format}  ${a.frames ? `${a.frames.start}-${a.frames.end}` : 'still'}${a.width ? `  ${a.width}x${a.height}` : ''}`,
          )
          .join('\n') || '(no assets)',
    );
  });

program
  .command('audit')
  .description(
    "the tenant's audit trail, oldest first: who made what, with which model and inputs (for AI-use disclosure)",
  )
  .option('--from <time>', 'records at or after this ISO 8601 date or date-time')
  .option('--to <time>', 'records before this ISO 8601 date or date-time (default: now)')
  .option(
    '--csv',
    'every record as RFC 4180 CSV on stdout (cells a spreadsheet would run start with a quote)',
  )
  .action(async (o: { from?: string; to?: string; csv?: boolean }) => {
    const api = await connect();
    const query = { ...(o.from && { from: o.from }), ...(o.to && { to: o.to }), limit: 1000 };
    let cursor: string | undefined;
    if (o.csv) {
      // Every page repeats the header line (which holds no line break); it is written once.
      let first = true;
      do {
        const page = await api.exportAuditCsv({ ...query, ...(cursor && { cursor }) });
        process.stdout.write(first ? page.csv : page.csv.slice(page.csv.indexOf('\r\n') + 2));
        first = false;
        cursor = page.nextCursor;
      } while (cursor);
      return;
    }
    const records: AuditRecord[] = [];
    do {
      const page = await api.listAudit({ ...query, ...(cursor && { cursor }) });
      records.push(...page.records);
      cursor = page.nextCursor;
    } while (cursor);
    print(
      { records },
      () =>
        records
          .map(
            (r) =>
              `${r.at}  ${r.kind.padEnd(16)}  ${r.jobId}  ${r.shot}  ${r.by ? `${r.by.keyName ?? ''} (${r.by.keyId})` : ''}${r.outputs ? `  ${r.outputs.length} frame(s)` : ''}`,
          )
          .join('\n') || '(no records)',
    );
  });

const webhooks = program.command('webhooks').description("the tenant's webhook endpoints and signing secret");
webhooks
  .command('add')
  .description('register an endpoint')
  .argument('<url>', 'https URL of the receiver')
  .option('--events <types...>', `only these event types (${EVENT_TYPES.join(', ')})`)
  .action(async (url: string, o: { events?: string[] }) => {
    const events = o.events?.flatMap((e) => e.split(',')).filter(Boolean);
    const unknown = events?.filter((e) => !(EVENT_TYPES as readonly string[]).includes(e)) ?? [];
    if (unknown.length > 0)
      throw new UsageError(`--events: unknown ${unknown.join(', ')}; known: ${EVENT_TYPES.join(', ')}`);
    const endpoint = await (await connect()).createWebhook({
      url,
      ...(events?.length && { events: events as WebhookEndpointInput['events'] }),
    });
    print(endpoint, () => `${endpoint.id} ${endpoint.url} ${endpoint.events?.join(',') ?? 'every event'}`);
  });
webhooks
  .command('list')
  .description('the endpoints')
  .action(async () => {
    const list = await (await connect()).listWebhooks();
    print(
      list,
      () =>
        list.endpoints
          .map(
            (e) =>
              `${e.id}  ${e.url}  ${e.events?.join(',') ?? 'every event'}${e.disabled ? `  disabled: ${e.disabledReason ?? ''}` : ''}`,
          )
          .join('\n') || '(no endpoints)',
    );
  });
webhooks
  .command('remove')
  .description('remove an endpoint')
  .argument('<id>', 'endpoint id')
  .action(async (id: string) => {
    await (await connect()).deleteWebhook(id);
    print({ removed: id }, () => `${id} removed`);
  });
webhooks
  .command('secret')
  .description('the signing secret (whsec_...); --rotate makes a new one (the old one signs too for 24 h)')
  .option('--rotate', 'rotate it')
  .action(async (o: { rotate?: boolean }) => {
    const api = await connect();
    const s = o.rotate ? await api.rotateWebhookSecret() : await api.getWebhookSecret();
    print(
      s,
      () =>
        s.secret +
        (s.previousExpiresAt ? `\n(the previous secret signs too until ${s.previousExpiresAt})` : ''),
    );
  });

// ---- money (docs/operations.md, "Prices, spend and budgets") ------------------------------------------

const usd = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`${name} must be USD, e.g. 2500`);
  return n;
};

program
  .command('usage')
  .description('spend (GPU seconds and USD) of the days FROM..TO (UTC, default this month), grouped')
  .option('--from <day>', 'first day, yyyy-mm-dd')
  .option('--to <day>', 'last day, yyyy-mm-dd')
  .addOption(
    new Option('--group-by <group>', 'one row per day, shot, model or tenant')
      .choices([...USAGE_GROUPS])
      .default('day'),
  )
  .option('--tenant <tenant>', "another tenant's (an admin key)")
  .action(async (o: { from?: string; to?: string; groupBy: UsageReport['groupBy']; tenant?: string }) => {
    const r = await (await connect()).getUsage({
      groupBy: o.groupBy,
      ...(o.from && { from: o.from }),
      ...(o.to && { to: o.to }),
      ...(o.tenant && { tenant: o.tenant }),
    });
    const row = (key: string, g: { frames: number; gpuSeconds: number; usd: number }) =>
      `${key.padEnd(24)}  ${String(g.frames).padStart(8)} frames  ${g.gpuSeconds.toFixed(1).padStart(10)} GPU s  $${g.usd.toFixed(2)}`;
    print(r, () =>
      [
        `${r.tenant ?? 'every tenant'}, ${r.from} to ${r.to}, by ${r.groupBy}`,
        ...r.groups.map((g) => row(g.key, g)),
        row('total', r.total),
      ].join('\n'),
    );
  });

const budget = program.command('budget').description("a tenant's monthly budget (an admin key)");
budget
  .command('set')
  .description(
    'set the limit and thresholds: a warning event and alarm, then 402s and held frames at the stop',
  )
  .argument('<tenant>', 'the tenant')
  .requiredOption('--limit-usd <usd>', 'USD a calendar month (UTC)', usd('--limit-usd'))
  .option('--warning-percent <n>', 'warn at this share of the limit (default 80)', int('--warning-percent'))
  .option('--stop-percent <n>', 'stop at this share (default 100)', int('--stop-percent'))
  .action(async (tenant: string, o: { limitUsd: number; warningPercent?: number; stopPercent?: number }) => {
    const b = await (await connect()).setBudget(tenant, {
      limitUsd: o.limitUsd,
      ...(o.warningPercent !== undefined && { warningPercent: o.warningPercent }),
      ...(o.stopPercent !== undefined && { stopPercent: o.stopPercent }),
    });
    print(
      b,
      () =>
        `${b.tenant}: $${b.limitUsd} a month (warning at ${b.warningPercent}%, stop at ${b.stopPercent}%); ` +
        `${b.month}: $${b.spentUsd} spent, ${b.level}`,
    );
  });

// ---- keys (ops: straight to the table, not through the API) --------------------------------------------

interface TableFlags {
  table?: string;
  region?: string;
  local?: string;
}
const withTable = (cmd: Command) =>
  cmd
    .option('--table <name>', "a deployed stack's table (its TableName output; or FRAMECAST_TABLE)")
    .option('--region <region>', 'AWS region of --table (default: AWS_REGION, the AWS profile)')
    .option('--local <dir>', "the local stack's data folder, when no table is given", '.framecast');

/** The keys module loads the AWS SDK: only the keys commands pay for it. */
async function keyTable(flags: TableFlags) {
  const keys = await import('./cli/keys.ts');
  const target = await keys.keyTable(flags).catch((err: Error) => {
    throw err instanceof keys.KeysUsageError ? new UsageError(err.message) : err;
  });
  return { keys, ...target };
}

/** A refusal of the keys module that is the caller's to fix (exit 2), else the error as it is. */
async function usageOf<T>(work: () => Promise<T>): Promise<T> {
  const { KeysUsageError } = await import('./cli/keys.ts');
  return Promise.resolve()
    .then(work)
    .catch((err: Error) => {
      throw err instanceof KeysUsageError ? new UsageError(err.message) : err;
    });
}

const keys = program
  .command('keys')
  .description("API keys, in the production's table with AWS credentials, or in the running local stack");
withTable(
  keys
    .command('create')
    .description('make a key for a tenant; it is printed once, only its SHA-256 is stored')
    .requiredOption('--tenant <tenant>', 'the tenant the key acts for (lowercase letters, digits, -)')
    .option(
      '--scopes <a,b>',
      'comma-separated scopes (default: every scope but admin, which is granted only by name)',
    )
    .option('--name <name>', 'a label for the key, e.g. "comp team"'),
).action(async (o: TableFlags & { tenant: string; scopes?: string; name?: string }) => {
  const { keys: k, store, where } = await keyTable(o);
  const created = await usageOf(() =>
    k.createKey(store, {
      tenant: o.tenant,
      scopes: k.parseScopes(o.scopes),
      ...(o.name !== undefined && { name: o.name }),
    }),
  );
  print(created, () => created.key);
  if (!json())
    process.stderr.write(
      `key ${created.id} for tenant "${created.tenant}" (${created.scopes.join(', ')}) in ${where}.\nIt is shown once: only its hash is stored.\n`,
    );
});
withTable(
  keys
    .command('list')
    .description('the keys (their ids, never the keys), of one tenant or all')
    .option('--tenant <tenant>', 'only this tenant'),
).action(async (o: TableFlags & { tenant?: string }) => {
  const { keys: k, store } = await keyTable(o);
  const list = (await store.listApiKeys(o.tenant)).map(k.keyView);
  print(
    { keys: list },
    () =>
      list
        .map(
          (key) =>
            `${key.id}  ${key.tenant}  ${key.scopes.join(',')}  ${key.name}  ${key.createdAt}${key.revokedAt ? `  revoked ${key.revokedAt}` : ''}`,
        )
        .join('\n') || '(no keys)',
  );
});
withTable(
  keys
    .command('revoke')
    .description('revoke a key by its id (keys list) or by the key itself; it then answers 401')
    .argument('<id>', 'the key id (12 hex digits) or the key (fc_...)'),
).action(async (id: string, o: TableFlags) => {
  const { keys: k, store } = await keyTable(o);
  const revoked = k.keyView(await usageOf(() => k.revokeKey(store, id)));
  print(
    revoked,
    () =>
      `${revoked.id} revoked at ${revoked.revokedAt}: the API refuses it with 401 within ${k.KEY_CACHE_MS / 1000} s (each API process trusts a key it has looked up that long)`,
  );
});

// ---- redrive (ops: a DLQ back to its queue, once the fault is fixed) ---------------------------------------

program
  .command('redrive')
  .description(
    "move a queue's dead-letter messages back to the queue, once the fault that sent them there is fixed (docs/operations.md)",
  )
  .requiredOption('--queue <queue>', 'plan, frame or event (whose <queue>DeadLetters alarm fired)')
  .option('--dlq-url <url>', "a deployed stack's dead-letter queue (aws sqs list-queues lists them)")
  .option('--region <region>', 'AWS region of --dlq-url (default: AWS_REGION, the AWS profile)')
  .option('--local <dir>', "the local stack's data folder, when no --dlq-url is given", '.framecast')
  .action(async (o: { queue: string; dlqUrl?: string; region?: string; local?: string }) => {
    // Loaded here: only this command pays for the SQS client.
    const r = await import('./cli/redrive.ts');
    const usage = (err: Error) => {
      throw err instanceof r.RedriveUsageError ? new UsageError(err.message) : err;
    };
    const target = await Promise.resolve()
      .then(() =>
        r.redriveTarget({
          queue: r.parseQueue(o.queue),
          ...(o.dlqUrl && { dlqUrl: o.dlqUrl }),
          ...(o.region && { region: o.region }),
          ...(o.local && { local: o.local }),
        }),
      )
      .catch(usage);
    const result = await r.redrive(target);
    print(result, () =>
      result.status === 'COMPLETED'
        ? `${result.moved} message(s) moved back from ${target.where}`
        : `the move from ${target.where} ended ${result.status}${result.failureReason ? `: ${result.failureReason}` : ''} after ${result.moved} message(s)`,
    );
    if (result.status !== 'COMPLETED') throw new Outcome();
  });

// ---- run ------------------------------------------------------------------------------------------------

function fail(message: string, code: number): never {
  if (json()) process.stdout.write(`${JSON.stringify({ error: { message } })}\n`);
  process.stderr.write(`framecast: ${message}\n`);
  process.exit(code);
}

/** A usage error prints the command's usage line after the message. */
function usageAfterErrors(cmd: Command, path: string[]) {
  const name = [...path, cmd.name()].join(' ');
  cmd.showHelpAfterError(`usage: ${name} ${cmd.usage()}\n(${name} --help for more)`);
  for (const sub of cmd.commands) usageAfterErrors(sub, [...path, cmd.name()]);
}
usageAfterErrors(program, []);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
      process.exit(0);
    process.exit(2);
  }
  if (err instanceof UsageError || err instanceof SequenceError) {
    process.stderr.write('usage: framecast <command> [options]; framecast --help for the commands\n');
    fail(err.message, 2);
  }
  if (err instanceof Outcome) process.exit(1);
  if (err instanceof FramecastApiError) {
    if (json())
      process.stdout.write(
        `${JSON.stringify({ error: { status: err.status, code: err.code, message: err.message, details: err.details } })}\n`,
      );
    process.stderr.write(`framecast: ${err.code}: ${err.message} (HTTP ${err.status})\n`);
    if (err.status === 401)
      process.stderr.write(
        'framecast: the key comes from --api-key, FRAMECAST_API_KEY or the profile file; a revoked key needs a new one (framecast keys create)\n',
      );
    process.exit(1);
  }
  if (err instanceof FramecastNetworkError) fail(`cannot reach the API: ${err.message}`, 1);
  fail((err as Error).message, 1);
}
