import { monotonicFactory } from 'ulid';

const ulid = monotonicFactory();

/** ULIDs sort by creation time, which gives "newest first" listings without another index. */
export const newJobId = (now = Date.now()): string => `job_${ulid(now)}`;
export const newEventId = (now = Date.now()): string => `evt_${ulid(now)}`;
export const newEndpointId = (now = Date.now()): string => `whe_${ulid(now)}`;
export const newAssetId = (now = Date.now()): string => `ast_${ulid(now)}`;

export const JOB_ID = /^job_[0-9A-HJKMNP-TV-Z]{26}$/;
export const EVENT_ID = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;
export const ENDPOINT_ID = /^whe_[0-9A-HJKMNP-TV-Z]{26}$/;
export const ASSET_ID = /^ast_[0-9A-HJKMNP-TV-Z]{26}$/;
/** A tenant names a partition and an S3 folder: 1 to 63 lowercase letters, digits or "-". */
export const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const isJobId = (s: string): boolean => JOB_ID.test(s);
export const isEventId = (s: string): boolean => EVENT_ID.test(s);
export const isEndpointId = (s: string): boolean => ENDPOINT_ID.test(s);
export const isAssetId = (s: string): boolean => ASSET_ID.test(s);
export const isTenant = (s: string): boolean => TENANT.test(s);
