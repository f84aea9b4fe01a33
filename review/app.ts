import {
  type Asset,
  type AssetFrame,
  type Frame,
  FramecastApiError,
  FramecastClient,
  type FrameDetail,
  type Job,
} from '../client/index.ts';

/**
 * The review page: the tenant's jobs with live progress, a shot as a contact sheet and a player, each
 * frame's seed, versions, inputs and provenance, and the review actions (approve, reject, re-roll, select
 * a version), all through the typed client. Plain DOM, no framework: the page is one screen of state.
 *
 * The API key is pasted by the user and kept in sessionStorage (gone when the tab closes); it is sent as
 * a Bearer header and never put in a URL. See the README's "Reviewing a shot" for why that is safe.
 */

type ReviewCall =
  | 'getFrame'
  | 'rerollFrame'
  | 'selectFrameVersion'
  | 'approveJob'
  | 'rejectJob'
  | 'getAssetFrame';

const FINISHED = new Set(['succeeded', 'failed', 'canceled']);
const STORE = { url: 'framecast.apiUrl', key: 'framecast.apiKey' };

// ---- DOM -------------------------------------------------------------------------------------------------

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; text?: string; title?: string } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title) node.title = props.title;
  node.append(...children);
  return node;
}

const ui = {
  apiUrl: $<HTMLInputElement>('api-url'),
  apiKey: $<HTMLInputElement>('api-key'),
  connect: $<HTMLButtonElement>('connect-button'),
  forget: $<HTMLButtonElement>('forget-button'),
  message: $<HTMLOutputElement>('message'),
  jobList: $<HTMLOListElement>('job-list'),
  jobsEmpty: $('jobs-empty'),
  shot: $('shot'),
  shotName: $('shot-name'),
  shotMeta: $('shot-meta'),
  jobStatus: $('job-status'),
  reviewActions: $('review-actions'),
  approve: $<HTMLButtonElement>('approve-button'),
  reject: $<HTMLButtonElement>('reject-button'),
  rejectReason: $<HTMLInputElement>('reject-reason'),
  player: $<HTMLCanvasElement>('player'),
  plateScreen: $('plate-screen'),
  plate: $<HTMLCanvasElement>('plate'),
  plateCaption: $('plate-caption'),
  play: $<HTMLButtonElement>('play-button'),
  prev: $<HTMLButtonElement>('prev-button'),
  next: $<HTMLButtonElement>('next-button'),
  scrubber: $<HTMLInputElement>('scrubber'),
  counter: $('frame-counter'),
  range: $('frame-range'),
  timecode: $('timecode'),
  fps: $<HTMLSelectElement>('fps'),
  sheet: $('sheet'),
  sheetCount: $('sheet-count'),
  inspector: $('inspector'),
  inspectFrame: $('inspect-frame'),
  facts: $<HTMLDListElement>('inspect-facts'),
  reroll: $('reroll'),
  rerollSeed: $<HTMLInputElement>('reroll-seed'),
  rerollButton: $<HTMLButtonElement>('reroll-button'),
  versionsBox: $('versions-box'),
  versions: $<HTMLOListElement>('versions'),
  inputsBox: $('inputs-box'),
  inputs: $<HTMLDListElement>('inputs'),
  provenanceBox: $('provenance-box'),
  provenance: $<HTMLDListElement>('provenance'),
};

// ---- state -------------------------------------------------------------------------------------------------

let api: FramecastClient | undefined;
let jobs: Job[] = [];
let job: Job | undefined;
const frames = new Map<number, Frame>();
const cells = new Map<number, { button: HTMLButtonElement; img: HTMLImageElement; ver: HTMLElement }>();
/** The frame shown by the player and the inspector. */
let current = 0;
let playing = false;
/** The frame the inspector last fetched, so a poll does not refetch it while nothing changed. */
let inspected: { frame: number; sha256: string | undefined } | undefined;
let detail: FrameDetail | undefined;
let pollTimer: ReturnType<typeof setTimeout> | undefined;
/** Review routes the API has no route for (it predates them): their buttons stay hidden. */
const missing = new Set<ReviewCall>();
const has = (call: ReviewCall) => !!api && !missing.has(call);

function say(text: string, error = false): void {
  ui.message.textContent = text;
  ui.message.classList.toggle('error', error);
}

function failure(err: unknown): string {
  if (err instanceof FramecastApiError) return `${err.status} ${err.code}: ${err.message}`;
  return (err as Error).message ?? String(err);
}

/**
 * Whether an answer says the route itself does not exist (an API older than the page): API Gateway's bare
 * 404 (`http_404`) or local mode's "no route for ...". A 404 of a handler names what was not found.
 */
const missingRoute = (err: unknown) =>
  err instanceof FramecastApiError &&
  (err.status === 405 || (err.status === 404 && (err.code === 'http_404' || /^no route/.test(err.message))));

// ---- images: one per frame and content, kept while its presigned URL is good --------------------------------

interface Picture {
  readonly image: HTMLImageElement;
  readonly expires: number;
}
const pictures = new Map<string, Picture>();

/** The image of `url`, keyed by what it shows (`key`), so a fresh URL of the same content is not fetched again. */
function picture(key: string, url: string, expiresAt?: string): HTMLImageElement {
  const have = pictures.get(key);
  if (have && have.expires > Date.now() + 60_000) return have.image;
  const image = new Image();
  image.decoding = 'async';
  image.src = url;
  image.addEventListener('load', () => {
    if (key.startsWith('full:') && Number(key.split(':')[1]) === current) draw();
  });
  pictures.set(key, { image, expires: expiresAt ? Date.parse(expiresAt) : Date.now() + 10 * 60_000 });
  return image;
}

const contentOf = (f: Frame) => `${f.frame}:${f.sha256 ?? f.version ?? ''}`;

function fullImage(f: Frame | undefined): HTMLImageElement | undefined {
  if (!f?.url || f.status !== 'succeeded') return undefined;
  return picture(`full:${contentOf(f)}`, f.url, f.urlExpiresAt);
}

// ---- connecting ----------------------------------------------------------------------------------------------

function connect(): void {
  const baseUrl = ui.apiUrl.value.trim() || location.origin;
  const apiKey = ui.apiKey.value.trim();
  if (!apiKey) {
    say('paste an API key (fc_…) to connect', true);
    return;
  }
  sessionStorage.setItem(STORE.url, baseUrl);
  sessionStorage.setItem(STORE.key, apiKey);
  // Few retries: a poll that fails is tried again by the next poll anyway.
  api = new FramecastClient({ baseUrl, apiKey, retry: { attempts: 2 } });
  say(`connected to ${baseUrl}`);
  schedule(0);
}

function forget(): void {
  sessionStorage.removeItem(STORE.key);
  clearTimeout(pollTimer);
  stop();
  ui.apiKey.value = '';
  api = undefined;
  jobs = [];
  job = undefined;
  ui.shot.hidden = true;
  ui.inspector.hidden = true;
  renderJobs();
  say('key forgotten');
}

// ---- polling -------------------------------------------------------------------------------------------------

function schedule(ms: number): void {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(() => void poll(), ms);
}

/** One round: the job list, and the open job with its frames. Faster while work is in flight. */
async function poll(): Promise<void> {
  if (!api) return;
  try {
    const page = await api.listJobs({ limit: 50 });
    jobs = page.jobs;
    renderJobs();
    if (job) await refreshJob(job.id);
    // A poll that works again clears the error of the last one.
    if (ui.message.textContent?.startsWith('poll:')) say('');
  } catch (err) {
    say(`poll: ${failure(err)}`, true);
  }
  const busy = jobs.some((j) => !FINISHED.has(j.status));
  schedule(document.hidden ? 10_000 : busy ? 1000 : 4000);
}

/** What the last frame listing was read against: a finished job whose counts did not move is re-read seldom. */
let listed: { signature: string; at: number } | undefined;

async function refreshJob(id: string, force = false): Promise<void> {
  if (!api) return;
  const fresh = await api.getJob(id);
  if (job?.id !== id) return;
  job = fresh;
  const signature = [
    fresh.id,
    fresh.status,
    fresh.frames.succeeded,
    fresh.frames.failed,
    fresh.rerolls,
  ].join();
  const quiet =
    FINISHED.has(fresh.status) && listed?.signature === signature && Date.now() - listed.at < 15_000;
  if (force || !quiet) {
    const list = await api.allFrames(id);
    if (job?.id !== id) return;
    for (const f of list) frames.set(f.frame, f);
    listed = { signature, at: Date.now() };
  }
  renderShot();
  await inspect(false);
}

// ---- the job list ----------------------------------------------------------------------------------------------

function done(j: Job): number {
  return j.frames.succeeded + j.frames.failed + j.frames.canceled;
}

function renderJobs(): void {
  ui.jobsEmpty.hidden = jobs.length > 0;
  if (api && jobs.length === 0) ui.jobsEmpty.textContent = 'No jobs yet for this key.';
  const items = jobs.map((j) => {
    const bar = el('span', { class: 'fill' });
    bar.style.width = `${(100 * done(j)) / Math.max(1, j.frames.total)}%`;
    const li = el(
      'li',
      { title: j.id },
      el(
        'div',
        { class: 'row' },
        el('span', { class: 'shot-name', text: j.shot }),
        el('span', { class: `badge ${j.status}`, text: j.status.replace('_', ' ') }),
      ),
      el(
        'div',
        { class: 'row' },
        el('span', { class: 'counts', text: `${j.frames.start}-${j.frames.end}` }),
        el('span', { class: 'counts', text: `${j.frames.succeeded}/${j.frames.total}` }),
      ),
      el('div', { class: 'progress' }, bar),
    );
    li.dataset.job = j.id;
    if (j.id === job?.id) li.classList.add('selected');
    li.addEventListener('click', () => void openJob(j.id));
    return li;
  });
  ui.jobList.replaceChildren(...items);
}

async function openJob(id: string): Promise<void> {
  const summary = jobs.find((j) => j.id === id);
  if (!summary) return;
  stop();
  job = summary;
  frames.clear();
  cells.clear();
  ui.sheet.replaceChildren();
  inspected = undefined;
  detail = undefined;
  current = summary.frames.start;
  ui.player.width = summary.width;
  ui.player.height = summary.height;
  ui.plate.width = summary.width;
  ui.plate.height = summary.height;
  ui.plateScreen.hidden = !plateOf(summary);
  ui.scrubber.min = String(summary.frames.start);
  ui.scrubber.max = String(summary.frames.end);
  ui.shot.hidden = false;
  ui.inspector.hidden = false;
  history.replaceState(null, '', `#${id}`);
  renderJobs();
  renderShot();
  try {
    await refreshJob(id, true);
  } catch (err) {
    say(`${id}: ${failure(err)}`, true);
  }
}

// ---- the shot: header, contact sheet --------------------------------------------------------------------------

function heroFrames(j: Job): Set<number> {
  return new Set(j.review?.frames ?? []);
}

function renderShot(): void {
  if (!job) return;
  const j = job;
  ui.shotName.textContent = j.shot;
  ui.shotMeta.textContent = [
    j.id,
    j.model,
    `${j.width}x${j.height}`,
    `frames ${j.frames.start}-${j.frames.end}`,
    `seed ${j.seed} (${j.seedMode})`,
    ...(j.windowMode && j.window ? [`${j.windowMode} windows of ${j.window.size}`] : []),
    ...(j.review ? [`review ${j.review.status}`] : []),
    ...(j.rerolls ? [`${j.rerolls} re-roll${j.rerolls > 1 ? 's' : ''}`] : []),
  ].join('  ·  ');
  ui.jobStatus.textContent = j.status.replace('_', ' ');
  ui.jobStatus.className = `badge ${j.status}`;
  ui.reviewActions.hidden = j.status !== 'awaiting_review' || !has('approveJob');
  ui.range.textContent = ` / ${j.frames.start}-${j.frames.end}`;
  ui.sheetCount.textContent = `${j.frames.succeeded} of ${j.frames.total} landed${
    j.frames.failed ? `, ${j.frames.failed} failed` : ''
  }`;

  const heroes = heroFrames(j);
  // Cells for every frame of the shot, made once; a long shot's images load as they scroll into view.
  if (cells.size === 0) {
    const made: HTMLButtonElement[] = [];
    for (let f = j.frames.start; f <= j.frames.end; f++) {
      const img = el('img');
      img.alt = '';
      img.loading = 'lazy';
      const ver = el('span', { class: 'ver' });
      ver.hidden = true;
      const button = el(
        'button',
        { class: 'cell pending' },
        img,
        el('span', { class: 'num', text: String(f) }),
        ver,
      );
      button.type = 'button';
      button.dataset.frame = String(f);
      if (heroes.has(f)) button.classList.add('hero');
      button.addEventListener('click', () => {
        stop();
        show(f);
      });
      cells.set(f, { button, img, ver });
      made.push(button);
    }
    ui.sheet.replaceChildren(...made);
  }
  for (const [f, cell] of cells) {
    const frame = frames.get(f);
    const status = frame?.status ?? (FINISHED.has(j.status) ? 'canceled' : 'pending');
    cell.button.className = `cell ${status}${heroes.has(f) ? ' hero' : ''}${f === current ? ' current' : ''}`;
    cell.button.dataset.status = status;
    const thumb = frame?.status === 'succeeded' ? (frame.thumbnailUrl ?? frame.url) : undefined;
    if (thumb && frame) {
      const key = `thumb:${contentOf(frame)}`;
      if (cell.img.dataset.key !== key) {
        cell.img.dataset.key = key;
        cell.img.src = thumb;
      }
    }
    const version = frame?.version;
    cell.ver.hidden = !(version && version > 1);
    cell.ver.textContent = version ? `v${version}` : '';
    cell.button.title = frame ? `${f}: ${frame.status}, seed ${frame.seed}` : `${f}: pending`;
  }
  draw();
}

// ---- the player ----------------------------------------------------------------------------------------------

function fps(): number {
  return Number(ui.fps.value) || 24;
}

/** Time from the shot's first frame as hh:mm:ss:ff at the chosen rate (23.976 counts 24 frames a second). */
function timecode(offset: number): string {
  const base = Math.round(fps());
  const [s, ff] = [Math.floor(offset / base), offset % base];
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}:${two(ff)}`;
}

function show(frame: number): void {
  if (!job) return;
  const { start, end } = job.frames;
  current = Math.min(end, Math.max(start, frame));
  for (const [f, c] of cells) c.button.classList.toggle('current', f === current);
  draw();
  if (!playing) void inspect(true);
}

function draw(): void {
  if (!job) return;
  ui.counter.textContent = String(current);
  ui.timecode.textContent = timecode(current - job.frames.start);
  ui.scrubber.value = String(current);
  paint(ui.player, fullImage(frames.get(current)), frames.get(current)?.status ?? 'pending');
  drawPlate();
  // Preload the frames just ahead, so playback does not wait on the network.
  if (playing)
    for (let k = 1; k <= 8; k++) {
      fullImage(frames.get(current + k));
      plateImage(current + k);
    }
}

// ---- the plate: the input frame each output frame was made from, beside the render ---------------------------

/** The job's plate: its `image` input, else its first. */
function plateOf(j: Job): [string, { asset: string; offset: number; outside: 'error' | 'hold' }] | undefined {
  const inputs = Object.entries(j.inputs ?? {});
  return inputs.find(([name]) => name === 'image') ?? inputs[0];
}

/** The asset frame output frame `frame` takes (core/inputs.ts): frame + offset, held at the ends with `hold`. */
function plateFrameOf(binding: { asset: string; offset: number }, frame: number): number {
  const range = assets.get(binding.asset)?.frames;
  const wanted = frame + binding.offset;
  return range ? Math.min(range.end, Math.max(range.start, wanted)) : wanted;
}

/** Plate frame URLs asked of the API, by asset and frame; each is asked once while its URL is good. */
const plateUrls = new Map<string, Promise<AssetFrame | undefined>>();

function plateImage(frame: number): HTMLImageElement | undefined {
  const plate = job && plateOf(job);
  if (!plate || !api || !has('getAssetFrame')) return undefined;
  const [, binding] = plate;
  const at = plateFrameOf(binding, frame);
  const key = `plate:${binding.asset}:${at}`;
  const have = pictures.get(key);
  if (have && have.expires > Date.now() + 60_000) return have.image;
  if (!plateUrls.has(key)) {
    const client = api;
    plateUrls.set(
      key,
      client.getAssetFrame(binding.asset, at).then(
        (file) => {
          const image = picture(key, file.url, file.urlExpiresAt);
          image.addEventListener('load', () => plateFrameOf(binding, current) === at && drawPlate(), {
            once: true,
          });
          plateUrls.delete(key);
          return file;
        },
        (err: unknown) => {
          // No route (an older API) or a key without assets:read: no plate; anything else is tried again later.
          if (missingRoute(err) || (err instanceof FramecastApiError && err.status === 403)) {
            missing.add('getAssetFrame');
            ui.plateScreen.hidden = true;
          } else setTimeout(() => plateUrls.delete(key), 5000);
          return undefined;
        },
      ),
    );
  }
  return undefined;
}

function drawPlate(): void {
  const plate = job && plateOf(job);
  if (!plate || ui.plateScreen.hidden) return;
  const [name, binding] = plate;
  const asset = assets.get(binding.asset);
  if (!asset) void loadAsset(binding.asset);
  const at = plateFrameOf(binding, current);
  ui.plateCaption.textContent = `${name} · ${asset?.name ?? binding.asset}${asset?.frames ? ` ${at}` : ''}`;
  paint(ui.plate, plateImage(current), `${name} ${at}`);
}

function paint(canvas: HTMLCanvasElement, image: HTMLImageElement | undefined, label: string): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  if (image?.complete && image.naturalWidth > 0) {
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    return;
  }
  // Not there yet: keep the last picture while playing, say what is missing when stepping.
  if (playing && image) return;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#555';
  ctx.font = `${Math.round(canvas.height / 18)}px monospace`;
  ctx.textAlign = 'center';
  ctx.fillText(label, canvas.width / 2, canvas.height / 2);
}

let lastTick = 0;
function tick(now: number): void {
  if (!playing || !job) return;
  const step = 1000 / fps();
  if (now - lastTick >= step) {
    // Keep the cadence: carry the remainder instead of drifting by a frame's lateness each time.
    lastTick = now - ((now - lastTick) % step);
    const { start, end } = job.frames;
    current = current >= end ? start : current + 1;
    draw();
  }
  requestAnimationFrame(tick);
}

function play(): void {
  if (!job || playing) return;
  playing = true;
  ui.play.textContent = 'Pause';
  lastTick = performance.now();
  requestAnimationFrame(tick);
}

function stop(): void {
  if (!playing) return;
  playing = false;
  ui.play.textContent = 'Play';
  for (const [f, c] of cells) c.button.classList.toggle('current', f === current);
  void inspect(true);
}

// ---- the inspector: one frame's facts, versions, inputs, provenance --------------------------------------------

type Row = [string, string | number | undefined];

function facts(list: HTMLDListElement, rows: Row[]): void {
  list.replaceChildren(
    ...rows
      .filter(([, v]) => v !== undefined && v !== '')
      .flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]),
  );
}

const short = (sha?: string) => (sha ? `${sha.slice(0, 16)}…` : undefined);
const when = (iso?: string) => iso?.replace('T', ' ').slice(0, 19);

/** Shows the current frame in the inspector; fetches its versions when it changed (or `force`). */
async function inspect(force: boolean): Promise<void> {
  if (!job || !api || playing) return;
  const frame = frames.get(current);
  const id = job.id;
  const key = { frame: current, sha256: frame?.sha256 };
  const changed = force || inspected?.frame !== key.frame || inspected?.sha256 !== key.sha256;
  // A version being made changes nothing in the listing: poll its frame until it is finished.
  const making = detail?.versions.some((v) => v.status === 'pending' || v.status === 'running');
  inspected = key;
  if ((changed || making) && frame && frame.status !== 'pending' && has('getFrame')) {
    try {
      detail = await api.getFrame(id, current);
    } catch (err) {
      if (missingRoute(err)) missing.add('getFrame');
      detail = undefined;
    }
    if (job?.id !== id || current !== key.frame) return;
  } else if (changed) detail = undefined;
  renderInspector(frame);
}

function renderInspector(frame: Frame | undefined): void {
  if (!job) return;
  const j = job;
  const d = detail?.frame === current ? detail : undefined;
  const f = d ?? frame;
  const chosen = d?.versions.find((v) => v.selected);
  ui.inspectFrame.textContent = String(current);
  facts(ui.facts, [
    ['status', f?.status ?? 'pending'],
    ['seed', f?.seed],
    ['version', f?.version],
    ['attempts', f?.attempts],
    ['size', f?.size !== undefined ? `${Math.round(f.size / 1024)} KB` : undefined],
    ['sha256', short(f?.sha256)],
    [
      'unit',
      d && d.unit.start !== d.unit.end
        ? `${d.unit.window !== undefined ? `window ${d.unit.window}: ` : ''}${d.unit.start}-${d.unit.end}`
        : undefined,
    ],
    ['error', f?.error],
  ]);

  // A re-roll of a finished frame; a version still being made is waited for (the API would answer 409).
  const making = d?.versions.some((v) => v.status === 'pending' || v.status === 'running');
  ui.reroll.hidden = !has('rerollFrame') || f?.status !== 'succeeded';
  ui.rerollButton.disabled = !!making;
  ui.rerollButton.textContent = making
    ? 'Re-rolling…'
    : d && d.unit.start !== d.unit.end
      ? 'Re-roll window'
      : 'Re-roll frame';

  const versions = d?.versions ?? [];
  ui.versionsBox.hidden = versions.length === 0;
  ui.versions.replaceChildren(
    ...versions
      .slice()
      .reverse()
      .map((v) => {
        const img = el('img');
        img.alt = `version ${v.version}`;
        const src = v.thumbnailUrl ?? v.url;
        if (src && v.status === 'succeeded') img.src = src;
        const body = el(
          'div',
          { class: 'v' },
          el('span', { text: `v${v.version}  ${v.selected ? 'in the sequence' : v.status}` }),
          el('span', { class: 'dim', text: `seed ${v.seed}` }),
          ...(v.params && Object.keys(v.params).length > 0
            ? [el('span', { class: 'dim', text: JSON.stringify(v.params) })]
            : []),
          el('span', {
            class: 'dim',
            text: `${when(v.finishedAt ?? v.createdAt)}${v.requestedBy ? ` by ${v.requestedBy.keyName ?? v.requestedBy.keyId}` : ''}`,
          }),
          ...(v.error ? [el('span', { class: 'dim', text: v.error })] : []),
        );
        if (!v.selected && v.status === 'succeeded' && has('selectFrameVersion')) {
          const select = el('button', { text: 'Select', class: 'select-version' });
          select.type = 'button';
          select.dataset.version = String(v.version);
          select.addEventListener('click', () => void selectVersion(v.version));
          body.append(select);
        }
        const li = el('li', {}, img, body);
        li.dataset.version = String(v.version);
        li.dataset.status = v.status;
        if (v.selected) li.classList.add('chosen');
        return li;
      }),
  );

  // Inputs: by name, the asset frame this frame was made from (core/inputs.ts: frame + offset, or the
  // nearest frame of the sequence with outside: hold; a still is every frame's).
  const inputs = Object.entries(j.inputs ?? {});
  ui.inputsBox.hidden = inputs.length === 0;
  facts(
    ui.inputs,
    inputs.map(([name, binding]): Row => {
      const asset = assets.get(binding.asset);
      if (!asset) void loadAsset(binding.asset);
      const frames = asset?.frames;
      const wanted = current + binding.offset;
      const taken = frames ? Math.min(frames.end, Math.max(frames.start, wanted)) : undefined;
      const label = asset ? asset.name : binding.asset;
      return [
        name,
        frames ? `${label} frame ${taken}${taken !== wanted ? ' (held)' : ''}` : `${label} (still)`,
      ];
    }),
  );

  // What made this frame, as a disclosure would name it: the job's request and this version's own.
  ui.provenanceBox.hidden = f?.status !== 'succeeded';
  facts(ui.provenance, [
    ['model', j.model],
    ['prompt', j.prompt],
    ['negative', j.negativePrompt],
    ['frame seed', chosen?.seed ?? f?.seed],
    ['shot seed', `${j.seed} (${j.seedMode})`],
    ['params', JSON.stringify(chosen?.params ?? j.params ?? {})],
    ['size', `${j.width}x${j.height}`],
    ['job', j.id],
    ['file', chosen?.key ?? f?.key],
    ['sha256', chosen?.sha256 ?? f?.sha256],
    ['made', when(chosen?.finishedAt)],
  ]);
}

/** Asset records by id, read once each: the inputs panel names an asset and its frames. */
const assets = new Map<string, Asset>();
const loadingAssets = new Set<string>();
async function loadAsset(id: string): Promise<void> {
  if (!api || loadingAssets.has(id)) return;
  loadingAssets.add(id);
  try {
    assets.set(id, await api.getAsset(id));
    renderInspector(frames.get(current));
  } catch {
    // A key without assets:read, or a deleted asset: the panel names the asset by its id.
  }
}

// ---- review actions ------------------------------------------------------------------------------------------

async function act(route: ReviewCall, what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    say(`${what}…`);
    await call();
    say(`${what}: done`);
  } catch (err) {
    if (missingRoute(err)) missing.add(route);
    say(`${what}: ${failure(err)}`, true);
  }
  if (job) {
    inspected = undefined;
    await refreshJob(job.id, true).catch((err: unknown) => say(failure(err), true));
  }
}

async function selectVersion(version: number): Promise<void> {
  if (!job || !api) return;
  const [client, id, frame] = [api, job.id, current];
  await act('selectFrameVersion', `select v${version} of ${frame}`, () =>
    client.selectFrameVersion(id, frame, version),
  );
}

function wire(): void {
  ui.connect.addEventListener('click', connect);
  ui.apiKey.addEventListener('keydown', (e) => e.key === 'Enter' && connect());
  ui.forget.addEventListener('click', forget);
  ui.play.addEventListener('click', () => (playing ? stop() : play()));
  ui.prev.addEventListener('click', () => show(current - 1));
  ui.next.addEventListener('click', () => show(current + 1));
  ui.scrubber.addEventListener('input', () => show(Number(ui.scrubber.value)));
  ui.fps.addEventListener('change', draw);
  ui.approve.addEventListener('click', () => {
    const [client, j] = [api, job];
    if (client && j) void act('approveJob', `approve ${j.shot}`, () => client.approveJob(j.id));
  });
  ui.reject.addEventListener('click', () => {
    const [client, j] = [api, job];
    const reason = ui.rejectReason.value.trim();
    if (client && j)
      void act('rejectJob', `reject ${j.shot}`, () => client.rejectJob(j.id, reason ? { reason } : {}));
  });
  ui.rerollButton.addEventListener('click', () => {
    const [client, j, frame] = [api, job, current];
    if (!client || !j) return;
    const seed = ui.rerollSeed.value.trim();
    void act('rerollFrame', `re-roll ${frame}`, () =>
      client.rerollFrame(j.id, frame, seed ? { seed: Number(seed) } : {}),
    );
  });

  // Keyboard stepping, as in a viewer: arrows step (shift: by ten), space plays; not while typing.
  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement;
    if (!job || target.matches('input:not([type=range]), select, textarea')) return;
    const step = e.shiftKey ? 10 : 1;
    const to: Record<string, number> = {
      ArrowRight: current + step,
      ArrowLeft: current - step,
      Home: job.frames.start,
      End: job.frames.end,
    };
    if (e.key === ' ') playing ? stop() : play();
    else if (e.key in to) {
      stop();
      show(to[e.key]!);
    } else return;
    // Space would also press a focused button, and arrows move a focused scrubber a second time.
    e.preventDefault();
  });
  document.addEventListener('visibilitychange', () => !document.hidden && api && schedule(0));
}

function start(): void {
  wire();
  ui.apiUrl.value = sessionStorage.getItem(STORE.url) ?? location.origin;
  const key = sessionStorage.getItem(STORE.key);
  if (key) {
    ui.apiKey.value = key;
    connect();
    const wanted = location.hash.slice(1);
    if (wanted) {
      // Open the job named in the address once the list has it.
      const open = setInterval(() => {
        if (jobs.some((j) => j.id === wanted)) {
          clearInterval(open);
          void openJob(wanted);
        }
      }, 200);
      setTimeout(() => clearInterval(open), 10_000);
    }
  }
}

start();
