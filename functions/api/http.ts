import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type * as z from 'zod';
import type { Caller, KeyLookup } from '../core/api-keys.ts';
import type { Scope } from '../core/model.ts';
import { logger } from '../logger.ts';
import { container } from '../services/container.ts';
import { authenticate } from './middleware/authenticate.ts';
import type { ApiContext, ApiEvent, ApiResponse } from './middleware/context.ts';
import { json } from './middleware/context.ts';
import { errorMapper } from './middleware/errors.ts';
import { jsonBody } from './middleware/json-body.ts';
import { flushMetrics } from './middleware/metrics.ts';
import { validateInput } from './middleware/validate.ts';

/**
 * The HTTP edge of every API handler, made of middy middlewares with one concern each (./middleware):
 * Lambda context in the logs, the caller on `request.context`, the JSON body, the validated query, the one
 * error mapper and metrics published per request. A handler file then reads as: take the validated
 * input, call one service, answer.
 */

export { clearKeyCache } from './middleware/authenticate.ts';
export { MAX_BODY_BYTES } from './middleware/json-body.ts';

export interface ApiRequest<Query = undefined> {
  readonly caller: Caller;
  readonly body: unknown;
  /** The query string as the route's `query` schema parsed it. */
  readonly query: Query;
  readonly path: Readonly<Record<string, string | undefined>>;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly requestId: string;
}

export interface ApiResult {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
  /** A body that is not JSON (the audit CSV): sent as is, with this content type. */
  readonly text?: { readonly contentType: string; readonly body: string };
}

export interface RouteOptions<Q extends z.ZodType | undefined> {
  /** The scope the API key needs; undefined: the route is public. */
  readonly scope?: Scope;
  /** The schema of the query string; its output is `req.query`. */
  readonly query?: Q;
  /**
   * Where keys are looked up; the process's container by default. Tests hand in their own.
   * @default () => container().apiKeys
   */
  readonly keys?: () => KeyLookup;
}

type QueryOf<Q> = Q extends z.ZodType ? z.output<Q> : undefined;

/** Header names are case-insensitive; API Gateway passes them as sent, so they are lowercased once here. */
const lowercaseHeaders = (): middy.MiddlewareObj<ApiEvent, ApiResponse> => ({
  before: async (request) => {
    request.event.headers = Object.fromEntries(
      Object.entries(request.event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
  },
});

/** Makes the Lambda handler of one API route. */
export function route<Q extends z.ZodType | undefined = undefined>(
  options: RouteOptions<Q>,
  fn: (req: ApiRequest<QueryOf<Q>>) => Promise<ApiResult>,
) {
  const keys = options.keys ?? (() => container().apiKeys);
  return middy<ApiEvent, ApiResponse, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(flushMetrics())
    .use(errorMapper())
    .use(lowercaseHeaders())
    .use(authenticate(options.scope, keys))
    .use(jsonBody())
    .use(validateInput(options.query))
    .handler(async (event, lambdaContext): Promise<ApiResponse> => {
      // Lambda hands in a plain Context; the middlewares above have set the rest of ApiContext on it.
      const context = lambdaContext as ApiContext;
      const result = await fn({
        caller: context.caller,
        body: context.body,
        query: context.query as QueryOf<Q>,
        path: event.pathParameters ?? {},
        headers: event.headers as Record<string, string | undefined>,
        requestId: context.awsRequestId,
      });
      if (result.status === 204)
        return { statusCode: 204, headers: { 'cache-control': 'no-store', ...result.headers } };
      if (result.text)
        return {
          statusCode: result.status,
          headers: {
            'content-type': result.text.contentType,
            'cache-control': 'no-store',
            ...result.headers,
          },
          body: result.text.body,
        };
      return json(result.status, result.body, result.headers);
    });
}
