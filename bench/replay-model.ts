import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A model server of the Cog HTTP contract that answers every prediction with the same PNG, as a data URL
 * and at once: what the worker's memory figures run against (./run.ts), so that they measure the worker
 * alone, at the speed of the worker alone, not the reference model's CPU rendering of each frame. The PNG
 * is one the reference model made. It declares no inputs (no OpenAPI document): it is sent everything.
 */
export async function startReplayModel(png: Uint8Array): Promise<{ url: string; close(): Promise<void> }> {
  const base64 = Buffer.from(png).toString('base64');
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/health-check') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"READY"}');
      return;
    }
    if (req.method === 'PUT' && url.startsWith('/predictions/')) {
      req.resume();
      req.on('end', () => {
        const id = JSON.stringify(decodeURIComponent(url.slice('/predictions/'.length)));
        const head = `{"id":${id},"status":"succeeded","output":"data:image/png;base64,`;
        const tail = '","metrics":{"predict_time":0.001}}';
        // Written in pieces, as a server streams a long answer: the worker reads it as it arrives.
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': head.length + base64.length + tail.length,
        });
        res.write(head);
        res.write(base64);
        res.end(tail);
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
