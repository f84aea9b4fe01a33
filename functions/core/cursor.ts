import { invalid } from './errors.ts';

/**
 * List cursors. Opaque to clients; inside they hold only a position (a job, event or asset id, or a frame
 * number), never a table key, so a forged cursor cannot reach another tenant's partition.
 */
export const encodeCursor = (position: string): string => Buffer.from(position, 'utf8').toString('base64url');

/** An audit record's id (core/audit.ts): its time, job, kind and what tells it apart; read in the caller's partition only. */
const AUDIT_POSITION =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#job_[0-9A-Z]{26}#[a-z]+\.[a-z]+(#\d{1,10}){0,2}$/;

/** The position in `cursor`, or a 400 naming `cursor` when it is not one this API handed out. */
export function decodeCursor(cursor: string): string {
  const position = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^((job|evt|ast)_[0-9A-Z]{26}|\d{1,10})$/.test(position))
    throw invalid('cursor', 'is not a cursor of this listing');
  return position;
}

/** The audit record id in an audit listing's `cursor`, or a 400 naming `cursor`. */
export function decodeAuditCursor(cursor: string): string {
  const position = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!AUDIT_POSITION.test(position)) throw invalid('cursor', 'is not a cursor of this listing');
  return position;
}
