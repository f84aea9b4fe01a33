import type { LookupAddress } from 'node:dns';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sendWebhook, USER_AGENT } from '../../../functions/adapters/webhook-sender.ts';
import { generateSecret, sign } from '../../../functions/core/webhooks/signing.ts';
import type { Lookup, WebhookPolicy } from '../../../functions/core/webhooks/ssrf.ts';

const local: WebhookPolicy = { allowLoopback: true };

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
  localAddress: string | undefined;
}

interface TestServer {
  port: number;
  hits: Received[];
  server: Server;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** An HTTP server on a loopback address that records every request, body included, before `handle`. */
async function serve(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
  port = 0,
): Promise<TestServer> {
  const hits: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    hits.push({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      localAddress: req.socket.localAddress,
    });
    handle(req, res);
  });
  servers.push(server);
  server.listen(port, host);
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, hits, server };
}

const answering = (...addresses: string[]) =>
  vi.fn<Lookup>((_host, _options, callback) =>
    callback(
      null,
      addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
    ),
  );

const body = JSON.stringify({
  type: 'job.succeeded',
  timestamp: '2026-11-03T20:26:10.344Z',
  data: { id: 'job_1' },
});
const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,AAAA' };

describe('a delivery to a receiver that answers', () => {
  it('POSTs the signed JSON body with its headers, and a 200 is a delivery', async () => {
    const secret = generateSecret();
    const signed = sign({ id: 'evt_01', timestamp: new Date(), body, secrets: [secret] });
    const receiver = await serve((_req, res) => res.end('thanks'));

    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/hooks/framecast?tenant=t1`,
      headers: signed,
      body,
      policy: local,
    });

    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'thanks', responseBytes: 6 });
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    const [hit] = receiver.hits;
    expect(hit).toMatchObject({ method: 'POST', url: '/hooks/framecast?tenant=t1', body });
    expect(hit?.headers).toMatchObject({
      host: `127.0.0.1:${receiver.port}`,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': USER_AGENT,
      ...signed,
    });
    expect(USER_AGENT).toMatch(/Framecast/);
    // What the receiver got verifies with the published library.
    const received = hit!.headers as Record<string, string>;
    expect(new Webhook(secret).verify(hit!.body, received)).toEqual(JSON.parse(body));
  });

  it('counts every 2xx as a delivery', async () => {
    const receiver = await serve((_req, res) => res.writeHead(204).end());
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result).toMatchObject({ ok: true, status: 204, responseBytes: 0 });
    expect(result.responseSnippet).toBeUndefined();
  });

  it('counts a 500 as a failure', async () => {
    const receiver = await serve((_req, res) => res.writeHead(500).end('boom'));
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result).toMatchObject({ ok: false, status: 500, error: 'HTTP 500', responseSnippet: 'boom' });
    expect(result.disable).toBeUndefined();
    expect(result.retryAfterSeconds).toBeUndefined();
  });

  it('does not follow a redirect, and counts it as a failure', async () => {
    const target = await serve((_req, res) => res.end('you should not be here'));
    const receiver = await serve((_req, res) =>
      res.writeHead(302, { location: `http://127.0.0.1:${target.port}/landing` }).end(),
    );
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result).toMatchObject({ ok: false, status: 302, error: 'redirect not followed' });
    expect(receiver.hits).toHaveLength(1);
    expect(target.hits).toHaveLength(0);
  });

  it('asks to disable the endpoint on 410 Gone', async () => {
    const receiver = await serve((_req, res) => res.writeHead(410).end());
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result).toMatchObject({ ok: false, status: 410, disable: true });
  });

  it('passes on Retry-After of a 429, in seconds', async () => {
    const receiver = await serve((_req, res) => res.writeHead(429, { 'retry-after': '120' }).end());
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 120 });
  });

  it('passes on Retry-After of a 503 given as an HTTP-date', async () => {
    const at = new Date(Date.now() + 600_000).toUTCString();
    const receiver = await serve((_req, res) => res.writeHead(503, { 'retry-after': at }).end());
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result).toMatchObject({ ok: false, status: 503 });
    expect(result.retryAfterSeconds).toBeGreaterThan(590);
    expect(result.retryAfterSeconds).toBeLessThanOrEqual(601);
  });

  it('ignores Retry-After on other statuses', async () => {
    const receiver = await serve((_req, res) => res.writeHead(500, { 'retry-after': '120' }).end());
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result.retryAfterSeconds).toBeUndefined();
  });
});

describe('a delivery to a receiver that misbehaves', () => {
  it('gives up at the timeout when the receiver never answers', async () => {
    const receiver = await serve(() => {});
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
      timeoutMs: 200,
    });
    expect(result).toEqual({ ok: false, error: 'timeout after 200 ms', latencyMs: expect.any(Number) });
    expect(result.latencyMs).toBeGreaterThanOrEqual(195);
    expect(result.latencyMs).toBeLessThan(2000);
    expect(receiver.hits).toHaveLength(1);
  });

  it('goes by the status when the body is still trickling in at the timeout', async () => {
    const receiver = await serve((_req, res) => {
      res.writeHead(200);
      res.write('ok, and then some');
    });
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
      timeoutMs: 300,
    });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'ok, and then some' });
  });

  it('reads no more than 64 KB of a huge answer, and hangs up', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const limit = 256 * 1024 * 1024;
    let written = 0;
    let hungUp: Promise<unknown> = Promise.resolve();
    const receiver = await serve((_req, res) => {
      hungUp = once(res, 'close');
      res.writeHead(200, { 'content-type': 'text/plain' });
      const pump = () => {
        while (written < limit && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });

    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });

    expect(result).toMatchObject({ ok: true, status: 200, responseBytes: 65_536 });
    expect(result.responseSnippet).toHaveLength(1024);
    await hungUp;
    expect(written).toBeLessThan(limit);
  });

  it('honours a smaller maxResponseBytes', async () => {
    const receiver = await serve((_req, res) => res.end('a'.repeat(10_000)));
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
      maxResponseBytes: 100,
    });
    expect(result).toMatchObject({ ok: true, responseBytes: 100 });
    expect(result.responseSnippet).toHaveLength(100);
  });

  it('reports a refused connection without throwing', async () => {
    const gone = await serve(() => {});
    gone.server.close();
    await once(gone.server, 'close');
    const result = await sendWebhook({ url: `http://127.0.0.1:${gone.port}/`, headers, body, policy: local });
    expect(result.ok).toBe(false);
    expect(result.status).toBeUndefined();
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('reports a connection reset without throwing', async () => {
    const receiver = await serve((req) => req.socket.destroy());
    const result = await sendWebhook({
      url: `http://127.0.0.1:${receiver.port}/`,
      headers,
      body,
      policy: local,
    });
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/socket hang up|ECONNRESET/);
  });
});

describe('the SSRF policy at delivery', () => {
  it('connects to the address that was checked, even when a second lookup would answer differently', async () => {
    const checked = await serve((_req, res) => res.end('checked'), '127.0.0.1');
    const other = await serve((_req, res) => res.end('other'), '127.0.0.2', checked.port);
    let calls = 0;
    const rebinding = vi.fn<Lookup>((_host, _options, callback) => {
      calls += 1;
      callback(null, [{ address: calls === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 }]);
    });

    const result = await sendWebhook({
      url: `http://localhost:${checked.port}/hook`,
      headers,
      body,
      policy: local,
      lookup: rebinding,
    });

    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'checked' });
    expect(rebinding).toHaveBeenCalledOnce();
    expect(checked.hits).toHaveLength(1);
    expect(checked.hits[0]?.localAddress).toBe('127.0.0.1');
    expect(checked.hits[0]?.headers.host).toBe(`localhost:${checked.port}`);
    expect(other.hits).toHaveLength(0);
  });

  it('refuses a name that resolves to a private address, without connecting', async () => {
    const receiver = await serve((_req, res) => res.end());
    const result = await sendWebhook({
      url: `http://localhost:${receiver.port}/`,
      headers,
      body,
      policy: local,
      lookup: answering('10.0.0.8'),
    });
    expect(result).toMatchObject({ ok: false, error: 'refused: private address' });
    expect(result.status).toBeUndefined();
    expect(receiver.hits).toHaveLength(0);
  });

  it('refuses loopback and plain http outside local mode', async () => {
    const receiver = await serve((_req, res) => res.end());
    for (const url of [`http://127.0.0.1:${receiver.port}/`, `https://127.0.0.1:${receiver.port}/`]) {
      const result = await sendWebhook({ url, headers, body, policy: { allowLoopback: false } });
      expect(result.ok).toBe(false);
      expect(result.error).toMatch(/^refused: (not https|loopback address)$/);
    }
    expect(receiver.hits).toHaveLength(0);
  });

  it('speaks TLS with the registered host name as SNI while connecting to the checked address', async () => {
    const names: string[] = [];
    // No certificate at all: the server only records the name the client asks for, then fails the handshake.
    const tls = createTlsServer({
      SNICallback: (name, callback) => {
        names.push(name);
        callback(new Error('no certificate here'), undefined);
      },
    });
    tls.on('tlsClientError', () => {});
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    try {
      const port = (tls.address() as AddressInfo).port;
      const lookup = answering('127.0.0.1');
      const result = await sendWebhook({
        url: `https://webhooks.test:${port}/hook`,
        headers,
        body,
        policy: local,
        lookup,
      });
      expect(result.ok).toBe(false);
      expect(result.error).toBeDefined();
      expect(names).toEqual(['webhooks.test']);
      expect(lookup).toHaveBeenCalledOnce();
    } finally {
      tls.close();
    }
  });
});
