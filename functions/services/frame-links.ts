import { hasThumbnail, thumbnailKey, versionKey } from '../core/frames.ts';
import type { FrameRecord, JobRecord } from '../core/model.ts';
import type { NamingTemplate } from '../core/naming.ts';

type Presign = (key: string) => Promise<{ url: string; expiresAt: Date }>;

/**
 * A stored frame's download URL (its sequence name, which holds the selected version) and its
 * thumbnail's: version 1's beside the sequence name, a re-roll's beside its version key. No thumbnail URL
 * for a version made without one (a job without `thumbnails`): the review page shows the frame itself.
 */
export async function frameLinks(
  presign: Presign,
  job: Pick<JobRecord, 'tenant' | 'shot' | 'id' | 'output' | 'thumbnails'>,
  record: FrameRecord,
  naming?: NamingTemplate,
): Promise<{ url?: string; urlExpiresAt?: string; thumbnailUrl?: string }> {
  if (!record.key) return {};
  const selected = record.selected ?? 1;
  const thumb = hasThumbnail(job, selected)
    ? thumbnailKey(selected === 1 ? record.key : versionKey(job, record.frame, selected, naming))
    : undefined;
  const [url, thumbnail] = await Promise.all([presign(record.key), thumb && presign(thumb)]);
  return {
    url: url.url,
    urlExpiresAt: url.expiresAt.toISOString(),
    ...(thumbnail && { thumbnailUrl: thumbnail.url }),
  };
}
