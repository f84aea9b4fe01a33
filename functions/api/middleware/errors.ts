import { randomUUID } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import { FramecastError } from '../../core/errors.ts';
import { logger } from '../../logger.ts';
import { type ApiEvent, type ApiResponse, json } from './context.ts';

const errorBody = (code: string, message: string, details?: unknown) => ({
  error: { code, message, ...(details !== undefined && { details }) },
});

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
      const headers: Record<string, string> = err.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
      request.response = json(err.status, errorBody(err.code, err.message, err.details), headers);
      return;
    }
    logger.error('unexpected error', { requestId, error: err as Error });
    request.response = json(
      500,
      errorBody('internal', `internal error; request id ${requestId}`, { requestId }),
    );
  },
});
