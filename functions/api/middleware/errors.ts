import { randomUUID } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import { isTransientAwsError } from '../../adapters/clients.ts';
import { FramecastError } from '../../core/errors.ts';
import { logger } from '../../logger.ts';
import { type ApiEvent, type ApiResponse, json } from './context.ts';

const errorBody = (code: string, message: string, details?: unknown) => ({
  error: { code, message, ...(details !== undefined && { details }) },
});

/**
 * Seconds a client waits before retrying a 503 or 429. The SDK has already retried with backoff for a few
 * seconds when a 503 leaves here, so the client's retry comes after that and spreads the load further.
 */
export const RETRY_AFTER_SECONDS = 2;

/**
 * The one error mapper: domain errors keep their code and status; anything else is a 500 that names a
 * request id and nothing internal. Like middy's http-error-handler, it steps aside when a response exists.
 */
export const errorMapper = (): MiddlewareObj<ApiEvent, ApiResponse> => ({
  onError: async (request) => {
    if (request.response !== undefined) return;
    const err = request.error;
    const requestId = request.context.awsRequestId ?? randomUUID();
    if (err instanceof FramecastError) {
      if (err.status >= 500) logger.error('request failed', { requestId, error: err });
      const headers: Record<string, string> =
        err.status === 401
          ? { 'www-authenticate': 'Bearer' }
          : err.status === 503 || err.status === 429
            ? { 'retry-after': String(RETRY_AFTER_SECONDS) }
            : {};
      request.response = json(err.status, errorBody(err.code, err.message, err.details), headers);
      return;
    }
    if (isTransientAwsError(err)) {
      // Throttled or down after the SDK's retries: the studio retries later; nothing internal is named.
      logger.warn('AWS service unavailable', { requestId, error: err as Error });
      request.response = json(
        503,
        errorBody('unavailable', `service temporarily unavailable; retry later (request id ${requestId})`, {
          requestId,
        }),
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
      return;
    }
    logger.error('unexpected error', { requestId, error: err as Error });
    request.response = json(
      500,
      errorBody('internal', `internal error; request id ${requestId}`, { requestId }),
    );
  },
});
