import type { FrameResponse, JobResponse } from '../../functions/core/schemas.ts';

/** A tiny HTTP client for the tests: what a studio's script would do with fetch. */
export interface Reply<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export function client(baseUrl: string, apiKey?: string) {
  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const res = await fetch(baseUrl + path, {
      method,
      headers: {
        ...(apiKey && { authorization: `Bearer ${apiKey}` }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }
  return {
    call,
    createJob: (body: unknown, headers?: Record<string, string>) =>
      call<JobResponse>('POST', '/v1/jobs', body, headers),
    getJob: (id: string) => call<JobResponse>('GET', `/v1/jobs/${id}`),
    listJobs: (query = '') => call<{ jobs: JobResponse[]; nextCursor?: string }>('GET', `/v1/jobs${query}`),
    frames: (id: string, query = '') =>
      call<{ frames: FrameResponse[]; nextCursor?: string }>('GET', `/v1/jobs/${id}/frames${query}`),
    cancel: (id: string) => call<JobResponse>('POST', `/v1/jobs/${id}/cancel`),
    async allFrames(id: string): Promise<FrameResponse[]> {
      const out: FrameResponse[] = [];
      let cursor: string | undefined;
      do {
        const page = await call<{ frames: FrameResponse[]; nextCursor?: string }>(
          'GET',
          `/v1/jobs/${id}/frames?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
        );
        if (page.status !== 200) throw new Error(`frames answered ${page.status}`);
        out.push(...page.body.frames);
        cursor = page.body.nextCursor;
      } while (cursor);
      return out;
    },
    /** Polls the job until `done` says so; fails the test with the last state after `timeoutMs`. */
    async waitForJob(
      id: string,
      done: (job: JobResponse) => boolean,
      timeoutMs = 60_000,
    ): Promise<JobResponse> {
      const deadline = Date.now() + timeoutMs;
      let last: JobResponse | undefined;
      while (Date.now() < deadline) {
        const r = await call<JobResponse>('GET', `/v1/jobs/${id}`);
        last = r.body;
        if (r.status === 200 && done(r.body)) return r.body;
        await new Promise((ok) => setTimeout(ok, 100));
      }
      throw new Error(`job ${id} did not reach the expected state; last: ${JSON.stringify(last)}`);
    },
  };
}

export const isFinished = (job: JobResponse) => ['succeeded', 'failed', 'canceled'].includes(job.status);

export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
