import type { MiddlewareObj } from '@middy/core';
import type * as z from 'zod';
import { parse } from '../../core/validation.ts';
import { type ApiEvent, type ApiResponse, apiContext } from './context.ts';

/**
 * Validates the query string by the route's schema onto `request.context.query`; a 400 names the field.
 * Request bodies whose rules depend on the production's configuration (a job's frame limit and models)
 * are validated by their service, which owns that configuration.
 */
export const validateInput = (query: z.ZodType | undefined): MiddlewareObj<ApiEvent, ApiResponse> => ({
  before: async (request) => {
    apiContext(request).query = query
      ? parse(query, request.event.queryStringParameters ?? {}, 'query')
      : undefined;
  },
});
