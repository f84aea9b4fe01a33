import type { JobStore } from '../adapters/store/jobs.ts';
import { publishAttempt } from '../adapters/trackers.ts';
import type { EventRecord } from '../core/model.ts';
import { jobSequenceParts, type NamingTemplate } from '../core/naming.ts';
import { type PublisherConfig, publishedSequence, publishTarget } from '../core/publish.ts';
import type { Publisher } from './webhooks.ts';

/**
 * The production's trackers as delivery targets of the webhook path (docs/colour.md, "Publishing"): on an
 * event a publisher takes (`job.succeeded` by default), the job's delivered sequence is published, and a
 * failed attempt is recorded and retried on the webhook schedule, to the event DLQ at the end. At least
 * once: an attempt whose answer was lost is made again, and may record a second version in the tracker.
 */
export function publishers(
  configs: readonly PublisherConfig[],
  deps: {
    readonly jobs: Pick<JobStore, 'getJob'>;
    readonly naming: NamingTemplate;
    readonly credentials: (p: PublisherConfig) => () => Promise<unknown>;
  },
): Publisher[] {
  return configs.map((config) => ({
    id: publishTarget(config.tracker),
    url: config.url,
    events: config.events,
    async publish(event: EventRecord) {
      const job = await deps.jobs.getJob(event.jobId);
      if (!job) return { ok: false, latencyMs: 0, error: `job ${event.jobId} not found` };
      const sequence = publishedSequence(job, jobSequenceParts(deps.naming, job));
      return publishAttempt(config, sequence, deps.credentials(config));
    },
  }));
}
