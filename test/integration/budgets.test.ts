import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BudgetView, JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

/**
 * Budgets on the local stack (docs/operations.md, "Budgets"): a tenant at its stop threshold gets 402 for
 * new jobs, and its running job's unstarted frames are held, with the reason, until the budget is raised;
 * then they resume by themselves and the counts add up. A warning crossing is announced once a month.
 */

let stack: LocalStack;
let admin: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({
    // Budgets are read again every 100 ms and held messages come back after a second, so the test is short.
    worker: { retryBaseMs: 5, budgetCheckMs: 100, holdSeconds: 1, concurrency: 1 },
    referenceModel: { renderDelayMs: 60 },
    env: {
      FRAMECAST_CHUNK_SIZE: '2',
      FRAMECAST_COST: JSON.stringify({ models: { reference: { gpuHourUsd: 3.6, slots: 1 } } }),
    },
  });
  admin = client(stack.url, await stack.createApiKey('ops', ['admin', 'jobs:read']));
});
afterAll(() => stack?.stop());

const shot = (name: string, frames = 40, extra: Record<string, unknown> = {}) => ({
  shot: name,
  prompt: 'a long take, on a budget',
  frames: { start: 1, end: frames },
  seed: 5,
  width: 64,
  height: 64,
  ...extra,
});

/** Polls until `ok` holds (no clock: the stack's own progress decides). */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PUT /v1/budgets/{tenant}', () => {
  it('is for admin keys, and refuses a bad budget with a 400 naming the field', async () => {
    const studio = client(stack.url, stack.apiKey);
    const refused = await studio.setBudget('dev', { limitUsd: 1 });
    expect(refused.status).toBe(403);
    const missing = await admin.setBudget('dev', {});
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body)).toContain('body.limitUsd');
    const upside = await admin.setBudget('dev', { limitUsd: 1, warningPercent: 90, stopPercent: 50 });
    expect(upside.status).toBe(400);
    expect(JSON.stringify(upside.body)).toContain('body.warningPercent');
    const badTenant = await admin.setBudget('Not_A_Tenant', { limitUsd: 1 });
    expect(badTenant.status).toBe(400);
    expect(JSON.stringify(badTenant.body)).toContain('path.tenant');
  });
});

describe('a tenant at its stop threshold', () => {
  it('gets 402 for new jobs; its running job holds its unstarted frames, then resumes when the budget is raised', async () => {
    const tenant = 'thrifty';
    const studio = client(stack.url, await stack.createApiKey(tenant));
    const set = await admin.setBudget(tenant, { limitUsd: 100 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      tenant,
      limitUsd: 100,
      level: 'ok',
      warningPercent: 80,
      stopPercent: 100,
    });

    const created = await studio.createJob(shot('THRIFTY_SH010'));
    expect(created.status).toBe(202);
    const id = created.body.id;
    await until(
      () => studio.getJob(id),
      (r) => r.body.frames.succeeded >= 4,
    );

    // Stopped: a budget of one micro-dollar is spent already.
    const cut = await admin.setBudget(tenant, { limitUsd: 0.000001 });
    expect((cut.body as BudgetView).level).toBe('stopped');
    const refused = await studio.createJob(shot('THRIFTY_SH020', 2));
    expect(refused.status).toBe(402);
    expect(refused.body).toMatchObject({ error: { code: 'budget_exceeded' } });
    expect(JSON.stringify(refused.body)).toContain(`tenant \\"${tenant}\\" budget`);

    const held = await until(
      () => studio.getJob(id),
      (r) => r.body.held !== undefined,
    );
    expect(held.body.held?.reason).toContain(`tenant "${tenant}" budget`);
    // Chunks in progress when it stopped finish; then nothing more is made while the messages come and go.
    const worker = stack.worker!;
    const settle = async () => {
      const before = worker.stats.held;
      await until(
        async () => worker.stats.held,
        (n) => n >= before + 6,
      );
      return (await studio.getJob(id)).body;
    };
    await settle();
    const first = await settle();
    const second = await settle();
    expect(second.frames.succeeded).toBe(first.frames.succeeded);
    expect(second.frames.succeeded).toBeLessThan(40);
    expect(second.status).toBe('running');
    const { total, succeeded, failed, canceled, held: heldFrames } = second.frames;
    expect(heldFrames).toBe(total - succeeded - failed - canceled);
    const listed = await studio.allFrames(id);
    expect(listed.filter((f) => f.status === 'succeeded')).toHaveLength(succeeded);
    expect(listed.filter((f) => f.status === 'running')).toHaveLength(0);
    expect(listed.filter((f) => f.status === 'held')).toHaveLength(heldFrames!);

    // Raised: the held frames resume by themselves, and every frame is made once.
    const raised = await admin.setBudget(tenant, { limitUsd: 100 });
    expect((raised.body as BudgetView).level).toBe('ok');
    const done = (await studio.waitForJob(id, isFinished)) as JobResponse;
    expect(done.status).toBe('succeeded');
    expect(done.frames).toEqual({ start: 1, end: 40, total: 40, succeeded: 40, failed: 0, canceled: 0 });
    expect(done.held).toBeUndefined();
    const frames = await studio.allFrames(id);
    expect(frames.filter((f) => f.status === 'held')).toHaveLength(0);
    expect(new Set(frames.filter((f) => f.status === 'succeeded').map((f) => f.frame)).size).toBe(40);
    // The spend of the job is its frames', held or not.
    const usage = await studio.getUsage({ groupBy: 'shot' });
    expect(usage.body.groups.find((g) => g.key === 'THRIFTY_SH010')?.frames).toBe(40);
  });

  it('refuses up front a job whose estimate alone is more than the budget has left', async () => {
    const tenant = 'modest';
    const studio = client(stack.url, await stack.createApiKey(tenant));
    await admin.setBudget(tenant, { limitUsd: 1 });
    // The prior: 2 GPU s per megapixel; 10,000 frames of 4096x4096 are far more than a dollar.
    const big = await studio.createJob(shot('MODEST_SH010', 10_000, { width: 4096, height: 4096 }));
    expect(big.status).toBe(402);
    expect(big.body).toMatchObject({ error: { code: 'budget_exceeded' } });
    expect(JSON.stringify(big.body)).toContain('estimate');
    const small = await studio.createJob(shot('MODEST_SH020', 2));
    expect(small.status).toBe(202);
  });
});

describe('a budget past its warning threshold', () => {
  it('sends one budget.warning for the month, however many jobs run after', async () => {
    const tenant = 'watchful';
    const studio = client(stack.url, await stack.createApiKey(tenant));
    const first = await studio.createJob(shot('WATCH_SH010', 20));
    await studio.waitForJob(first.body.id, isFinished);
    const spent = (await studio.getUsage()).body.total.usd;
    expect(spent).toBeGreaterThan(0);
    // 85% spent: past the 80% warning, short of the stop; the next frames recorded announce it.
    const set = await admin.setBudget(tenant, { limitUsd: spent / 0.85 });
    expect((set.body as BudgetView).level).toBe('warning');
    const warningsOf = async (id: string) =>
      (await studio.allEvents(id)).body.filter((e) => e.type === 'budget.warning');
    const second = await studio.createJob(shot('WATCH_SH020', 1));
    expect(second.status).toBe(202);
    await studio.waitForJob(second.body.id, isFinished);
    const warned = await until(
      () => warningsOf(second.body.id),
      (w) => w.length > 0,
    );
    expect(warned).toHaveLength(1);
    expect(warned[0]?.data).toMatchObject({ budget: { tenant, month: expect.any(String) } });
    // Still past the warning (the limit follows the spend): no second warning this month.
    const now = (await studio.getUsage()).body.total.usd;
    await admin.setBudget(tenant, { limitUsd: now / 0.85 });
    const third = await studio.createJob(shot('WATCH_SH030', 1));
    await studio.waitForJob(third.body.id, isFinished);
    expect(await warningsOf(third.body.id)).toHaveLength(0);
  });
});
