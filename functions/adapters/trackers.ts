import { createHash, createHmac, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import {
  type Credentials,
  CredentialsSchema,
  ftrack,
  kitsu,
  type PublishedSequence,
  type PublisherConfig,
  shotgrid,
  type Tracker,
  type TrackerRequest,
} from '../core/publish.ts';
import { parseRetryAfter } from '../core/webhooks/schedule.ts';
import type { DeliveryResult } from './webhook-sender.ts';

/**
 * Publishing to a tracker over HTTP (core/publish.ts builds each request), and the credentials it signs in
 * with: read from Secrets Manager (the secret the production config names, granted to the delivery Lambda),
 * or, in local mode, from FRAMECAST_PUBLISH_CREDENTIALS. The answer has the shape of a webhook delivery's,
 * so the delivery path records and retries it as it does webhooks.
 */

export const TRACKER_TIMEOUT_MS = 15_000;

export class TrackerError extends Error {
  override readonly name = 'TrackerError';
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Sends one request to the tracker; answers its JSON, or throws a TrackerError naming the step. */
async function call(base: string, step: string, req: TrackerRequest): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${base}${req.path}`, {
      method: req.method,
      headers: { 'user-agent': 'Framecast-Publish/1.0', ...req.headers },
      ...(req.body !== undefined && { body: req.body }),
      redirect: 'manual',
      signal: AbortSignal.timeout(TRACKER_TIMEOUT_MS),
    });
  } catch (err) {
    throw new TrackerError(`${step}: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (res.status < 200 || res.status >= 300) {
    throw new TrackerError(
      `${step}: ${res.status} ${text.slice(0, 300)}`,
      res.status,
      parseRetryAfter(res.headers.get('retry-after') ?? undefined),
    );
  }
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new TrackerError(`${step}: the answer is not JSON`, res.status);
  }
}

const field = (value: unknown, path: (string | number)[], step: string): unknown => {
  let at: unknown = value;
  for (const key of path) at = (at as Record<string | number, unknown> | undefined)?.[key];
  if (at === undefined || at === null) throw new TrackerError(`${step}: the answer has no ${path.join('.')}`);
  return at;
};

/** Publishes a sequence to one tracker, each step as its API documents it; throws a TrackerError. */
export async function publishSequence(
  p: PublisherConfig,
  s: PublishedSequence,
  credentials: unknown,
  newId: () => string = randomUUID,
): Promise<void> {
  switch (p.tracker) {
    case 'shotgrid': {
      const c = CredentialsSchema.shotgrid.parse(credentials);
      const token = String(
        field(await call(p.url, 'sign in', shotgrid.auth(c)), ['access_token'], 'sign in'),
      );
      const found = await call(p.url, 'find the shot', shotgrid.findShot(p, s, token));
      const shotId = Number(field(found, ['data', 0, 'id'], `find shot ${s.shot}`));
      const version = await call(p.url, 'create the Version', shotgrid.createVersion(p, s, shotId, token));
      const versionId = Number(field(version, ['data', 'id'], 'create the Version'));
      await call(
        p.url,
        'create the PublishedFile',
        shotgrid.createPublishedFile(p, s, shotId, versionId, token),
      );
      return;
    }
    case 'ftrack': {
      const c = CredentialsSchema.ftrack.parse(credentials);
      const [shots, assets] = field(
        await call(p.url, 'find the shot', ftrack.findShotAndAsset(p, s, c)),
        [],
        '',
      ) as {
        data?: { id?: string }[];
      }[];
      const shotId = String(field(shots, ['data', 0, 'id'], `find shot ${s.shot}`));
      const assetId = assets?.data?.[0]?.id;
      const ids = { asset: newId(), version: newId(), component: newId() };
      await call(
        p.url,
        'create the version',
        ftrack.publish(p, s, c, { shotId, ...(assetId !== undefined && { assetId }) }, ids),
      );
      return;
    }
    case 'kitsu': {
      const c = CredentialsSchema.kitsu.parse(credentials);
      const token = String(field(await call(p.url, 'sign in', kitsu.login(c)), ['access_token'], 'sign in'));
      const found = await call(p.url, 'find the shot', kitsu.findShot(p, s, token));
      const shotId = String(field(found, [0, 'id'], `find shot ${s.shot}`));
      await call(p.url, 'create the output file', kitsu.createOutputFile(p, s, shotId, token));
      return;
    }
  }
}

/** publishSequence as one delivery attempt: 2xx all the way is delivered; 4xx other than 408/429 is final. */
export async function publishAttempt(
  p: PublisherConfig,
  s: PublishedSequence,
  credentials: () => Promise<unknown>,
): Promise<DeliveryResult> {
  const began = performance.now();
  try {
    await publishSequence(p, s, await credentials());
    return { ok: true, status: 200, latencyMs: performance.now() - began };
  } catch (err) {
    const e = err instanceof TrackerError ? err : new TrackerError((err as Error).message);
    return {
      ok: false,
      ...(e.status !== undefined && { status: e.status }),
      latencyMs: performance.now() - began,
      error: `${p.tracker}: ${e.message}`.slice(0, 1000),
      ...(e.retryAfterSeconds !== undefined && { retryAfterSeconds: e.retryAfterSeconds }),
    };
  }
}

// ---- credentials ---------------------------------------------------------------------------------------------

/** node:crypto as the SHA-256 the SigV4 signer asks for. */
class Sha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: SourceData): void {
    this.hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}
const toBuffer = (d: SourceData): Buffer =>
  typeof d === 'string'
    ? Buffer.from(d)
    : Buffer.from(
        ArrayBuffer.isView(d) ? d.buffer : d,
        ArrayBuffer.isView(d) ? d.byteOffset : 0,
        ArrayBuffer.isView(d) ? d.byteLength : undefined,
      );

/**
 * Secrets Manager's GetSecretValue over its JSON protocol, signed with SigV4 from the process's
 * credentials. The project holds no Secrets Manager client (a new npm dependency); this is the one call it
 * needs, through the signer the SDK itself uses.
 */
export function secretsManager(region: string, endpoint = `https://secretsmanager.${region}.amazonaws.com`) {
  const signer = new SignatureV4({
    credentials: defaultProvider(),
    region,
    service: 'secretsmanager',
    sha256: Sha256,
  });
  const url = new URL(endpoint);
  return async (secretId: string): Promise<unknown> => {
    const body = JSON.stringify({ SecretId: secretId });
    const signed = await signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port && { port: Number(url.port) }),
      path: '/',
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'secretsmanager.GetSecretValue',
      },
      body,
    });
    const res = await fetch(`${url.origin}/`, {
      method: 'POST',
      headers: signed.headers as Record<string, string>,
      body,
      signal: AbortSignal.timeout(TRACKER_TIMEOUT_MS),
    });
    const out = (await res.json().catch(() => ({}))) as { SecretString?: string; message?: string };
    if (!res.ok || out.SecretString === undefined) {
      throw new TrackerError(
        `read the credentials: Secrets Manager answered ${res.status} ${out.message ?? ''}`.trim(),
        res.status >= 500 ? res.status : undefined,
      );
    }
    return JSON.parse(out.SecretString) as unknown;
  };
}

/**
 * Where a tracker's credentials come from: FRAMECAST_PUBLISH_CREDENTIALS (local mode: JSON by tracker) when
 * it names the tracker, otherwise the secret, read once per process and kept for five minutes so a rotated
 * secret is picked up.
 */
export function credentialsOf(
  local: Readonly<Partial<Record<Tracker, unknown>>>,
  readSecret: (id: string) => Promise<unknown>,
  now: () => number = Date.now,
) {
  const cache = new Map<string, { at: number; value: Promise<unknown> }>();
  return (p: PublisherConfig) => async (): Promise<Credentials<typeof p.tracker>> => {
    if (local[p.tracker] !== undefined) return local[p.tracker] as Credentials<typeof p.tracker>;
    const hit = cache.get(p.secret);
    if (hit && now() - hit.at < 5 * 60_000) return (await hit.value) as Credentials<typeof p.tracker>;
    const value = readSecret(p.secret);
    value.catch(() => cache.delete(p.secret));
    cache.set(p.secret, { at: now(), value });
    return (await value) as Credentials<typeof p.tracker>;
  };
}
