import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { corsHeaders } from '../functions/shared/cors.ts';
import { PAGE_ROUTES, ROUTES, type RouteDefinition } from '../functions/shared/routes.ts';

/**
 * Local mode's API Gateway: an HTTP server that turns each request into the API Gateway v2 (HTTP API)
 * event and calls the same Lambda handler module that runs in AWS.
 */

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

/** API Gateway's own payload limit; the handlers enforce Framecast's smaller one. */
const GATEWAY_MAX_BODY = 10 * 1024 * 1024;

interface CompiledRoute {
  readonly route: RouteDefinition;
  readonly pattern: RegExp;
  readonly names: string[];
}

function compile(route: RouteDefinition): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((part) => {
      const m = /^\{(\w+)\}$/.exec(part);
      if (!m?.[1]) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(m[1]);
      return '([^/]+)';
    })
    .join('/');
  return { route, pattern: new RegExp(`^${source}$`), names };
}

export function lambdaContext(functionName: string, timeoutMs = 30_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength;
    if (size > GATEWAY_MAX_BODY) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  route: CompiledRoute,
  match: RegExpExecArray,
  body: Buffer,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const pathParameters = Object.fromEntries(
    route.names.map((n, i) => [n, decodeURIComponent(match[i + 1] ?? '')]),
  );
  const text = body.toString('utf8');
  const isText = body.byteLength === 0 || Buffer.from(text, 'utf8').equals(body);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: `${route.route.method} ${route.route.path}`,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length > 0 && { queryStringParameters: query }),
    ...(route.names.length > 0 && { pathParameters }),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: `${route.route.method} ${route.route.path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.byteLength > 0 && { body: isText ? text : body.toString('base64') }),
    isBase64Encoded: !isText,
  };
}

function send(res: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (typeof result === 'string') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(result);
    return;
  }
  const body = result.body
    ? Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8')
    : Buffer.alloc(0);
  const headers: Record<string, string | number | boolean> = { ...(result.headers ?? {}) };
  res.writeHead(result.statusCode ?? 200, { ...headers, 'content-length': body.byteLength });
  res.end(body);
}

export interface Gateway {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serves ROUTES (and, with `page`, the review page's PAGE_ROUTES) on host:port; handler modules are loaded
 * once, at start, as a Lambda would at cold start.
 */
export async function startGateway(
  options: {
    port?: number;
    host?: string;
    root?: string;
    /** Serve the review page's PAGE_ROUTES too. */
    page?: boolean;
    /** Origins a browser page may call from (functions/shared/cors.ts); `*` for any. */
    corsOrigins?: readonly string[];
  } = {},
): Promise<Gateway> {
  const corsOrigins = options.corsOrigins ?? [];
  const root = options.root ?? process.cwd();
  const served = [...ROUTES, ...(options.page ? PAGE_ROUTES : [])];
  const routes = served.map(compile);
  const handlers = new Map<RouteDefinition, Handler>();
  for (const r of served) {
    const mod = (await import(pathToFileURL(resolve(root, r.entry)).href)) as { handler: Handler };
    handlers.set(r, mod.handler);
  }
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://local');
      const origin = req.headers.origin;
      // As API Gateway does with CORS configured: it answers preflights itself and adds the headers.
      if (req.method === 'OPTIONS' && origin && req.headers['access-control-request-method']) {
        res.writeHead(204, corsHeaders(corsOrigins, origin, true)).end();
        return;
      }
      const cors = corsHeaders(corsOrigins, origin);
      for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
      const candidates = routes.map((r) => ({ r, m: r.pattern.exec(url.pathname) })).filter((x) => x.m);
      const hit = candidates.find((x) => x.r.route.method === req.method);
      if (!hit?.m) {
        const status = candidates.length > 0 ? 405 : 404;
        const code = status === 404 ? 'not_found' : 'method_not_allowed';
        send(res, {
          statusCode: status,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ error: { code, message: `no route for ${req.method} ${url.pathname}` } }),
        });
        return;
      }
      const body = await readBody(req);
      if (body === 'too-large') {
        send(res, {
          statusCode: 413,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ error: { code: 'payload_too_large', message: 'body: request too large' } }),
        });
        return;
      }
      const handler = handlers.get(hit.r.route)!;
      const result = await handler(toEvent(req, url, hit.r, hit.m, body), lambdaContext(hit.r.route.entry));
      send(res, result);
    })().catch((err: unknown) => {
      // The handlers map their own errors; this is the gateway failing, answered like API Gateway would.
      console.error('local gateway error', err);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal', message: 'internal error' } }));
    });
  });
  // Idle keep-alive connections live longer than any client's (undici keeps them 4 s by default): with
  // Node's 5 s a client under load could send on a connection the server was closing, and get ECONNRESET
  // (seen in the load test). API Gateway itself keeps idle connections for minutes.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => ok());
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}`,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
