import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  vi.resetModules();
});

describe('business metrics', () => {
  it('are published as embedded metric format in the Framecast namespace, per production', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('FRAMECAST_PRODUCTION', 'ep101-collapse');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const { countMetric, publishMetrics } = await import('../../functions/metrics.ts');
    const { APP_METRICS } = await import('../../functions/shared/metrics.ts');
    countMetric(APP_METRICS.framesSucceeded);
    publishMetrics();
    const emf = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => '_aws' in l)!;
    expect(emf).toMatchObject({ production: 'ep101-collapse', FramesSucceeded: 1 });
    const meta = emf._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
    expect(meta.CloudWatchMetrics[0]!.Namespace).toBe('Framecast');
    expect(meta.CloudWatchMetrics[0]!.Dimensions[0]).toContain('production');
  });
});
