import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayOf, monthOf, spendMicros, usdToMicros } from '../../functions/core/cost.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';

/**
 * Spend on the local stack (docs/operations.md, "Prices, spend and budgets"): every frame records its
 * GPU time and spend, and the job and the tenant's day and month count the same frames in the same
 * transactions, so the sums agree to the micro-dollar.
 */

const PRICE_USD = 3.6; // one micro-dollar per GPU millisecond: easy sums

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({
    worker: { retryBaseMs: 5 },
    env: {
      FRAMECAST_COST: JSON.stringify({
        models: { reference: { gpuHourUsd: PRICE_USD, slots: 2 } },
      }),
    },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const shot = (name: string, extra: Record<string, unknown> = {}) => ({
  shot: name,
  prompt: 'a lighthouse, priced',
  frames: { start: 1, end: 10 },
  seed: 3,
  width: 64,
  height: 64,
  ...extra,
});

describe('spend', () => {
  it('adds up from frames to job to tenant', async () => {
    const tenant = `spend${Date.now() % 1_000_000}`;
    const key = await stack.createApiKey(tenant);
    const studio = client(stack.url, key);
    const before = await stack.app.usageStore.month(tenant, monthOf(new Date()));
    expect(before).toEqual({ gpuMs: 0, costMicros: 0 });

    const ids: string[] = [];
    for (const name of ['SPEND_A', 'SPEND_B']) {
      const created = await studio.createJob(shot(name));
      expect(created.status).toBe(202);
      ids.push(created.body.id);
    }
    let jobMicros = 0;
    let jobMs = 0;
    for (const id of ids) {
      const job = await studio.waitForJob(id, isFinished);
      expect(job.status).toBe('succeeded');
      const frames = await studio.allFrames(id);
      expect(frames).toHaveLength(10);
      let frameMicros = 0;
      let frameMs = 0;
      for (const f of frames) {
        expect(f.cost?.gpuSeconds).toBeGreaterThan(0);
        frameMs += Math.round(f.cost!.gpuSeconds * 1000);
        frameMicros += usdToMicros(f.cost!.usd);
        // Each frame is priced at the configured GPU-hour price.
        expect(usdToMicros(f.cost!.usd)).toBe(
          spendMicros(Math.round(f.cost!.gpuSeconds * 1000), usdToMicros(PRICE_USD)),
        );
      }
      expect(Math.round(job.cost.gpuSeconds * 1000)).toBe(frameMs);
      expect(usdToMicros(job.cost.usd)).toBe(frameMicros);
      jobMs += frameMs;
      jobMicros += frameMicros;
    }
    const month = await stack.app.usageStore.month(tenant, monthOf(new Date()));
    expect(month).toEqual({ gpuMs: jobMs, costMicros: jobMicros });
    const days = await stack.app.usageStore.days(tenant, dayOf(new Date()), dayOf(new Date()));
    const total = days.filter((d) => !d.model && !d.shot);
    expect(total.reduce((n, d) => n + d.costMicros, 0)).toBe(jobMicros);
    expect(days.filter((d) => d.shot).reduce((n, d) => n + d.costMicros, 0)).toBe(jobMicros);
    expect(days.filter((d) => d.model).reduce((n, d) => n + d.frames, 0)).toBe(20);
    // Another tenant's spend is its own.
    expect(await stack.app.usageStore.month('dev', monthOf(new Date()))).toEqual({ gpuMs: 0, costMicros: 0 });

    // GET /v1/usage answers the same sums, by day, shot and model.
    const today = dayOf(new Date());
    const byDay = await studio.getUsage({ from: today, to: today });
    expect(byDay.status).toBe(200);
    expect(byDay.body).toMatchObject({ tenant, groupBy: 'day', total: { frames: 20 } });
    expect(usdToMicros(byDay.body.total.usd)).toBe(jobMicros);
    expect(Math.round(byDay.body.total.gpuSeconds * 1000)).toBe(jobMs);
    const byShot = await studio.getUsage({ from: today, to: today, groupBy: 'shot' });
    expect(byShot.body.groups.map((g) => [g.key, g.frames])).toEqual([
      ['SPEND_A', 10],
      ['SPEND_B', 10],
    ]);
    const byModel = await studio.getUsage({ groupBy: 'model' });
    expect(byModel.body.groups).toEqual([{ key: 'reference', ...byDay.body.total }]);
    usage.tenant = tenant;
    usage.micros = jobMicros;
  });

  it("counts a re-roll's GPU time on the job and the tenant, beside its frames'", async () => {
    const tenant = `reroll${Date.now() % 1_000_000}`;
    const studio = client(stack.url, await stack.createApiKey(tenant));
    const created = await studio.createJob(shot('SPEND_R', { frames: { start: 1, end: 3 } }));
    const job = await studio.waitForJob(created.body.id, isFinished);
    expect(job.status).toBe('succeeded');
    const before = await stack.app.usageStore.month(tenant, monthOf(new Date()));
    expect(usdToMicros(job.cost.usd)).toBe(before.costMicros);

    const reroll = await studio.call('POST', `/v1/jobs/${job.id}/frames/2/retry`, { seed: 9 });
    expect(reroll.status).toBe(202);
    const after = await eventually(async () => {
      const j = (await studio.getJob(job.id)).body;
      return usdToMicros(j.cost.usd) > before.costMicros ? j : undefined;
    }, 're-roll priced');
    const month = await stack.app.usageStore.month(tenant, monthOf(new Date()));
    // The job's cost and the tenant's month grew by the same re-roll, and agree to the micro-dollar.
    expect(month.costMicros).toBe(usdToMicros(after.cost.usd));
    expect(month.gpuMs).toBe(Math.round(after.cost.gpuSeconds * 1000));
    const days = await stack.app.usageStore.days(tenant, dayOf(new Date()), dayOf(new Date()));
    expect(days.filter((d) => d.model).reduce((n, d) => n + d.frames, 0)).toBe(4);
  });
});

const usage = { tenant: '', micros: 0 };

describe('usage items', () => {
  it('sums a month from its day totals, and reads the items of the earlier layout without counting twice', async () => {
    const tenant = `layout${Date.now() % 1_000_000}`;
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.env.AWS_ENDPOINT_URL_DYNAMODB,
        region: stack.env.AWS_REGION,
        credentials: {
          accessKeyId: stack.env.AWS_ACCESS_KEY_ID!,
          secretAccessKey: stack.env.AWS_SECRET_ACCESS_KEY!,
        },
      }),
    );
    const table = stack.env[ENV.table]!;
    const item = (sk: string, costMicros: number, frames: number, extra: Record<string, string> = {}) =>
      db.send(
        new PutCommand({
          TableName: table,
          Item: { pk: `USAGE#${tenant}`, sk, tenant, gpuMs: costMicros, costMicros, frames, ...extra },
        }),
      );
    // 2026-10-01 in the layout before 2026-12-01: a month item, and the day by model and by shot.
    await item('MONTH#2026-10', 100, 1, { month: '2026-10' });
    await item('DAY#2026-10-01', 100, 1, { day: '2026-10-01' });
    await item('DAY#2026-10-01#MODEL#reference', 100, 1, { day: '2026-10-01', model: 'reference' });
    await item('DAY#2026-10-01#SHOT#SH010', 100, 1, { day: '2026-10-01', shot: 'SH010' });
    // 2026-10-31 in today's: the day, and its split by model and shot; and a day of the next month.
    await item('DAY#2026-10-31', 300, 2, { day: '2026-10-31' });
    await item('SPLIT#2026-10-31#MODEL#reference#SHOT#SH020', 300, 2, {
      day: '2026-10-31',
      model: 'reference',
      shot: 'SH020',
    });
    await item('DAY#2026-11-01', 5000, 9, { day: '2026-11-01' });
    db.destroy();

    expect(await stack.app.usageStore.month(tenant, '2026-10')).toEqual({ gpuMs: 400, costMicros: 400 });
    expect(await stack.app.usageStore.month(tenant, '2026-11')).toEqual({ gpuMs: 5000, costMicros: 5000 });
    const admin = client(stack.url, await stack.createApiKey('ops', ['jobs:read', 'admin']));
    const period = { tenant, from: '2026-10-01', to: '2026-10-31' };
    const groups = async (groupBy: 'day' | 'model' | 'shot') =>
      (await admin.getUsage({ ...period, groupBy })).body.groups.map((g) => [g.key, g.frames]);
    expect(await groups('day')).toEqual([
      ['2026-10-01', 1],
      ['2026-10-31', 2],
    ]);
    expect(await groups('model')).toEqual([['reference', 3]]);
    expect(await groups('shot')).toEqual([
      ['SH010', 1],
      ['SH020', 2],
    ]);
  });
});

describe('GET /v1/usage', () => {
  it("shows a key its own tenant's usage only; an admin key sees every tenant's", async () => {
    const today = dayOf(new Date());
    const mine = await api.getUsage({ groupBy: 'tenant', from: today, to: today });
    expect(mine.status).toBe(200);
    expect(mine.body.tenant).toBe('dev');
    expect(mine.body.groups.map((g) => g.key)).not.toContain(usage.tenant);
    const other = await api.getUsage({ tenant: usage.tenant });
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({ error: { code: 'forbidden' } });

    const admin = client(stack.url, await stack.createApiKey('ops', ['jobs:read', 'admin']));
    const all = await admin.getUsage({ groupBy: 'tenant', from: today, to: today });
    expect(all.status).toBe(200);
    expect(all.body.tenant).toBeUndefined();
    const row = all.body.groups.find((g) => g.key === usage.tenant);
    expect(row && usdToMicros(row.usd)).toBe(usage.micros);
    const theirs = await admin.getUsage({ tenant: usage.tenant, from: today, to: today });
    expect(usdToMicros(theirs.body.total.usd)).toBe(usage.micros);
  });

  it('refuses a bad period with a 400 naming the field', async () => {
    const backwards = await api.getUsage({ from: '2026-02-01', to: '2026-01-01' });
    expect(backwards.status).toBe(400);
    expect(backwards.body).toMatchObject({
      error: { code: 'invalid_request', details: { field: 'query.from' } },
    });
    const long = await api.getUsage({ from: '2020-01-01', to: '2026-01-01' });
    expect(long.status).toBe(400);
    const notADay = await api.getUsage({ from: 'yesterday' });
    expect(notADay.status).toBe(400);
    expect(JSON.stringify(notADay.body)).toContain('from');
    const group = await api.call('GET', '/v1/usage?groupBy=week');
    expect(group.status).toBe(400);
  });
});
