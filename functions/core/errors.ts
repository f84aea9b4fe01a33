/**
 * Domain errors. The one error-mapping middleware (functions/api/middleware/errors.ts) turns these into
 * `{error: {code, message, details?}}` with their status; anything else becomes a bare 500.
 */
export type ErrorCode =
  | 'invalid_json'
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'asset_incomplete'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'budget_exceeded'
  | 'idempotency_mismatch'
  | 'asset_invalid'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  asset_incomplete: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  /** A budget at its stop threshold, or a job whose estimate is more than the budget has left. */
  budget_exceeded: 402,
  idempotency_mismatch: 422,
  asset_invalid: 422,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

export class FramecastError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'FramecastError';
    this.status = STATUS[code];
  }
}

export const notFound = (what: string) => new FramecastError('not_found', `${what} was not found`);
export const invalid = (field: string, message: string) =>
  new FramecastError('invalid_request', `${field}: ${message}`, { field });
