import { createHash } from 'node:crypto';

/**
 * API keys are `fc_` and URL-safe characters; only their SHA-256 is ever stored or compared, so the
 * table holds nothing that authenticates by itself.
 */
export const API_KEY_PATTERN = /^fc_[A-Za-z0-9_-]{16,128}$/;

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');
