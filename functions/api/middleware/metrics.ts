import type { MiddlewareObj } from '@middy/core';
import { publishMetrics } from '../../metrics.ts';
import type { ApiEvent, ApiResponse } from './context.ts';

/**
 * Publishes the metrics a request counted, once per request, when it ends either way. Powertools'
 * logMetrics does the same but warns on every request that counted nothing, which most reads are.
 */
export const flushMetrics = (): MiddlewareObj<ApiEvent, ApiResponse> => ({
  after: async () => publishMetrics(),
  onError: async () => publishMetrics(),
});
