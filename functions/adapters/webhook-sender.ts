import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseRetryAfter } from '../core/webhooks/schedule.ts';
import { hostOf, type Lookup, resolveAndCheck, type WebhookPolicy } from '../core/webhooks/ssrf.ts';

/**
 * One delivery attempt of one webhook. node:http(s) rather than fetch: fetch resolves the host itself,
 * so it cannot be made to connect to the address the SSRF policy just checked.
 */

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
/** What is kept of the response for the delivery log: attempts are stored with their event. */
export const SNIPPET_BYTES = 1024;
export const USER_AGENT = 'Framecast-Webhooks/1.0';

export interface WebhookRequest {
  readonly url: string;
  /** The signed headers (webhook-id, webhook-timestamp, webhook-signature). */
  readonly headers: Readonly<Record<string, string>>;
  /** Exactly the string that was signed. */
  readonly body: string;
  readonly policy: WebhookPolicy;
  /** For the whole attempt: DNS, connect, TLS, request and response. */
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  readonly lookup?: Lookup;
}

export interface DeliveryResult {
  /** Only a 2xx answer is a delivery. */
  ok: boolean;
  status?: number;
  latencyMs: number;
  error?: string;
  /** From Retry-After on 429 and 503, unclamped (nextAttemptDelay clamps). */
  retryAfterSeconds?: number;
  /** The receiver answered 410 Gone: stop sending to this endpoint. */
  disable?: boolean;
  /** The first SNIPPET_BYTES of the response body, as text. */
  responseSnippet?: string;
  /** How much of the response body was read (at most maxResponseBytes). */
  responseBytes?: number;
}

type Outcome = Omit<DeliveryResult, 'latencyMs'>;

function outcome(response: IncomingMessage, body: Buffer): Outcome {
  const status = response.statusCode ?? 0;
  const read = {
    status,
    responseBytes: body.length,
    ...(body.length > 0 ? { responseSnippet: body.subarray(0, SNIPPET_BYTES).toString('utf8') } : {}),
  };
  if (status >= 200 && status < 300) return { ok: true, ...read };
  if (status >= 300 && status < 400) return { ok: false, ...read, error: 'redirect not followed' };
  if (status === 410) return { ok: false, ...read, error: 'endpoint gone (410)', disable: true };
  const retryAfterSeconds =
    status === 429 || status === 503
      ? parseRetryAfter(headerValue(response.headers['retry-after']))
      : undefined;
  return {
    ok: false,
    ...read,
    error: `HTTP ${status}`,
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  };
}

const headerValue = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value;

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}

/** A lookup that can only answer the address that was checked, whatever the socket asks. */
function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return (_hostname, options, callback) => {
    // Node asks for a list when it races address families (autoSelectFamily, on by default since 20).
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/**
 * POSTs `body` once. Never throws: network errors, refusals and timeouts come back as `ok: false` with
 * `error`. Redirects are not followed, at most `maxResponseBytes` of the answer is read, and the
 * connection goes only to the address resolveAndCheck approved.
 */
export function sendWebhook(input: WebhookRequest): Promise<DeliveryResult> {
  const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = input.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const started = performance.now();

  return new Promise<DeliveryResult>((resolve) => {
    let settled = false;
    let request: ClientRequest | undefined;
    let answered: (() => Outcome) | undefined;

    const finish = (result: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request?.destroy();
      resolve({ ...result, latencyMs: Math.round(performance.now() - started) });
    };
    // Once the status is in, it decides; a body still trickling in at the deadline only shortens the snippet.
    const timer = setTimeout(
      () => finish(answered ? answered() : { ok: false, error: `timeout after ${timeoutMs} ms` }),
      timeoutMs,
    );

    const start = async () => {
      const checked = await resolveAndCheck(input.url, input.policy, input.lookup);
      if (settled) return;
      if (!checked.ok) return finish({ ok: false, error: `refused: ${checked.reason}` });

      const { url, address, family } = checked;
      const host = hostOf(url);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      request = send({
        method: 'POST',
        host,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        headers: {
          ...input.headers,
          host: url.host,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(input.body)),
          'user-agent': USER_AGENT,
        },
        lookup: pinnedLookup(address, family),
        // Certificates are checked against the name the tenant registered, not the address.
        ...(url.protocol === 'https:' && isIP(host) === 0 ? { servername: host } : {}),
        // A fresh connection each time: no pooled socket, and not the global agent, which Node 24 can send
        // through an environment proxy that would resolve the name again.
        agent: false,
      });

      request.on('error', (err) => finish(answered ? answered() : { ok: false, error: describe(err) }));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        answered = () => outcome(response, Buffer.concat(chunks, bytes));
        response.on('data', (chunk: Buffer) => {
          const room = maxResponseBytes - bytes;
          if (room > 0) {
            const kept = chunk.subarray(0, room);
            chunks.push(kept);
            bytes += kept.length;
          }
          if (bytes >= maxResponseBytes) finish(answered!());
        });
        response.on('end', () => finish(answered!()));
        response.on('error', () => finish(answered!()));
      });
      request.end(input.body);
    };
    start().catch((err: unknown) => finish({ ok: false, error: describe(err) }));
  });
}
