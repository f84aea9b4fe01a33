import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A model server of the Cog HTTP contract that answers every prediction with the same PNG, as a data URL
 * and at once: what the worker's memory figures run against (./run.ts), so that they measure the worker
 * alone, at the speed of the worker alone, not the reference model's CPU rendering of each frame. The PNG
 * is one the reference model made. It declares no inputs (no OpenAPI document): it is sent everything,
 * so it sees a window's `num_frames` and answers a window, as `reference-window` does, with a list of that
 * many copies of the PNG.
 */
export async function startReplayModel(png: Uint8Array): Promise<{ url: string; close(): Promise<void> }> {
  const base64 = Buffer.from(Buffer.from(png).toString('base64'));
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/health-check') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"READY"}');
      return;
    }
    if (req.method === 'PUT' && url.startsWith('/predictions/')) {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (part: string) => {
        body += part;
      });
      req.on('end', () => {
        const id = JSON.stringify(decodeURIComponent(url.slice('/predictions/'.length)));
        const { input } = JSON.parse(body) as { input?: { num_frames?: unknown } };
        const frames = typeof input?.num_frames === 'number' ? input.num_frames : undefined;
        answer(res, id, base64, frames).catch(() => res.destroy());
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

/**
 * The answer: one data URL, or a window's list of `frames` of them. Written in pieces, as a server streams
 * a long answer (the worker reads it as it arrives), each piece once the connection took the one before:
 * a window of 4K frames is 430 MB of base64, which the worker may read no faster than it stores frames.
 */
async function answer(res: ServerResponse, id: string, base64: Buffer, frames: number | undefined) {
  const file = '"data:image/png;base64,';
  const head = `{"id":${id},"status":"succeeded","output":${frames === undefined ? '' : '['}`;
  const tail = `${frames === undefined ? '' : ']'},"metrics":{"predict_time":0.001}}`;
  const count = frames ?? 1;
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': head.length + count * (file.length + base64.length + 1) + (count - 1) + tail.length,
  });
  // A worker that went away does not drain: the answer stops there. One listener for the whole answer.
  const closed = once(res, 'close').then(() => {
    throw new Error('the connection closed');
  });
  closed.catch(() => undefined);
  const write = async (piece: string | Buffer) => {
    if (res.write(piece)) return;
    await Promise.race([once(res, 'drain'), closed]);
  };
  await write(head);
  for (let i = 0; i < count; i++) {
    await write(`${i > 0 ? ',' : ''}${file}`);
    await write(base64);
    await write('"');
  }
  res.end(tail);
}
