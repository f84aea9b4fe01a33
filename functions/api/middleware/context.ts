import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type { Caller } from '../../core/api-keys.ts';

/**
 * What the middlewares put on middy's `request.context` for the handler: who is calling, the parsed
 * body and the validated input. Every field is set before the handler runs.
 */
export interface ApiContext extends Context {
  /** Set by `authenticate`; an anonymous caller (no tenant, no scopes) on public routes. */
  caller: Caller;
  /** Set by `jsonBody`: the parsed JSON body, or undefined when there is none. */
  body: unknown;
  /** Set by `validateInput`: the query string parsed by the route's schema, when it declares one. */
  query: unknown;
}

export type ApiEvent = APIGatewayProxyEventV2;

/** The context of a request being handled, as the API's middlewares fill it in. */
export const apiContext = (request: { context: Context }): ApiContext => request.context as ApiContext;
export type ApiResponse = APIGatewayProxyResultV2;

/** The JSON response every route answers with. */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}): ApiResponse => ({
  statusCode: status,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});
