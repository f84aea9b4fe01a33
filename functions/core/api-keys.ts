import { createHash } from 'node:crypto';
import type { ApiKeyRecord, Scope } from './model.ts';

/**
 * API keys are `fc_` and URL-safe characters; only their SHA-256 is ever stored or compared, so the
 * table holds nothing that authenticates by itself.
 */
export const API_KEY_PATTERN = /^fc_[A-Za-z0-9_-]{16,128}$/;

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** Who is calling: the tenant the key is bound to and what it may do. */
export interface Caller {
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  /** The key's id: the first 12 hex digits of its SHA-256 (never the key), recorded on what it decides. */
  readonly keyId?: string;
  /** The key's name, as its creator labelled it. */
  readonly keyName?: string;
}

/** A key's id as shown and recorded: a prefix of its hash, enough to tell keys apart, useless to sign in. */
export const keyIdOf = (hash: string): string => hash.slice(0, 12);

/** Where keys are looked up by hash (the API key store). */
export interface KeyLookup {
  getApiKey(hash: string): Promise<ApiKeyRecord | undefined>;
}
