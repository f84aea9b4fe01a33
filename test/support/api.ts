import { FramecastApiError, FramecastClient, type Job } from '../../client/index.ts';

/**
 * The integration tests' view of the typed client (client/index.ts): every request goes through it, and
 * each call answers a `Reply` (status, body, headers) so a test can assert the status of a success as
 * well as of a refusal. A refusal's body is the API's `{error: {code, message, details}}` as the client's
 * typed error carries it. Each call gets its own client, with one attempt: what a test sees is the API's
 * first answer, and concurrent calls never mix up their replies.
 */
export interface Reply<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** A test may send what the types would refuse (that is what bad-input tests do): arguments are loose. */
type Loose<A extends unknown[]> = { [I in keyof A]: A[I] extends string | undefined ? A[I] : unknown };
type Replying = {
  [K in keyof FramecastClient as FramecastClient[K] extends (...args: never[]) => Promise<unknown>
    ? K
    : never]: FramecastClient[K] extends (...args: infer A) => Promise<infer R>
    ? <T = R>(...args: Loose<A>) => Promise<Reply<T>>
    : never;
};

export function client(baseUrl: string, apiKey?: string) {
  const options = { baseUrl, ...(apiKey !== undefined && { apiKey }), retry: { attempts: 1 } };
  const plain = new FramecastClient(options);

  async function reply<T>(name: keyof FramecastClient, args: unknown[]): Promise<Reply<T>> {
    let last: Response | undefined;
    const api = new FramecastClient({
      ...options,
      fetch: async (input, init) => {
        last = await fetch(input, init);
        return last;
      },
    });
    const method = api[name] as (...a: unknown[]) => Promise<T>;
    try {
      const body = await method.apply(api, args);
      return { status: last!.status, body, headers: last!.headers };
    } catch (err) {
      if (!(err instanceof FramecastApiError) || !last) throw err;
      const { code, message, details } = err;
      return {
        status: err.status,
        body: { error: { code, message, ...(details !== undefined && { details }) } } as T,
        headers: last.headers,
      };
    }
  }

  const replying = new Proxy({} as Replying, {
    get: (_, name) => {
      // Only the client's methods: `then` and the like stay undefined, so the object is no thenable.
      if (typeof name !== 'string' || !(name in FramecastClient.prototype)) return undefined;
      return (...args: unknown[]) => reply(name as keyof FramecastClient, args);
    },
  });

  return Object.assign(Object.create(replying) as Omit<Replying, 'allFrames' | 'waitForJob'>, {
    /** The typed client itself, for calls whose answer the test takes as it is. */
    api: plain,
    /**
     * A raw request, for what the typed client does not send by design: headers a browser adds (an
     * Origin for CORS), or a route called with a method or body the types refuse.
     */
    async call<T = unknown>(
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<Reply<T>> {
      const res = await fetch(`${baseUrl.replace(/\/+$/, '')}${path}`, {
        method,
        headers: {
          ...(apiKey !== undefined && { authorization: `Bearer ${apiKey}` }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
    },
    allFrames: (id: string) => plain.allFrames(id),
    /** Polls the job until `done` says so; fails the test with the last state after `timeoutMs`. */
    async waitForJob(id: string, done: (job: Job) => boolean, timeoutMs = 60_000): Promise<Job> {
      const deadline = Date.now() + timeoutMs;
      let last: Job | undefined;
      while (Date.now() < deadline) {
        last = await plain.getJob(id);
        if (done(last)) return last;
        await new Promise((ok) => setTimeout(ok, 100));
      }
      throw new Error(`job ${id} did not reach the expected state; last: ${JSON.stringify(last)}`);
    },
  });
}

export const isFinished = (job: Job) => ['succeeded', 'failed', 'canceled'].includes(job.status);

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
