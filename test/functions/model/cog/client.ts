import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Talking to a Cog server in tests, as the worker would: JSON over HTTP, health polled until ready. */

export type Json = Record<string, unknown>;

interface Served {
  url: string;
}

export async function call(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

export const health = async (model: Served) => (await call(`${model.url}/health-check`, 'GET')).body;

export async function until<T>(
  probe: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const ready = (model: Served) =>
  until(
    () => health(model),
    (h) => h.status === 'READY',
  );

export const put = (model: Served, id: string, body: unknown, headers?: Record<string, string>) =>
  call(`${model.url}/predictions/${encodeURIComponent(id)}`, 'PUT', body, headers);

/** A webhook receiver on loopback that records every prediction it is sent. */
export async function webhookReceiver() {
  const received: Json[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => {
      text += d;
    });
    req.on('end', () => {
      received.push(JSON.parse(text) as Json);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
