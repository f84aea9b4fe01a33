import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/**
 * A webhook receiver on loopback, as a vendor would run one: it records every request and answers
 * with the status `answer` gives for the n-th request (0-based).
 */
type Reply = number | { status: number; headers?: Record<string, string> };

export async function startReceiver(
  answer: (n: number, req: Received) => Reply | Promise<Reply> = () => 200,
) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const entry = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      const pending = answer(received.length, entry);
      received.push(entry);
      const reply = await pending;
      const { status, headers } = typeof reply === 'number' ? { status: reply, headers: {} } : reply;
      if (!res.destroyed) res.writeHead(status, headers).end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/framecast`,
    received,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
