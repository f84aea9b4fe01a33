import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OIIO_MISSING } from '../../functions/adapters/oiio.ts';
import { sequenceUrls } from '../../functions/core/otio.ts';
import type { FrameDetail, JobResponse } from '../../functions/core/schemas.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { exrInfo } from '../support/exr.ts';
import { checkOtio } from '../support/otio.ts';

/**
 * A production's deliverables on the local stack (docs/colour.md): its naming template names the frames,
 * re-submits bump the version, each job's OpenTimelineIO file names exactly the frames it stored, and a
 * machine without oiiotool fails an EXR job saying which package it lacks.
 */

const STUDIO = '{shot}_{pass}_v{version:03}.{frame:04}.{ext}';
let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({ env: { [ENV.namingTemplate]: STUDIO, [ENV.namingPass]: 'comp' } });
  api = client(stack.url, await stack.createApiKey('deliverables'));
});
afterAll(() => stack?.stop());

const shot = (extra: Record<string, unknown> = {}) => ({
  shot: 'EP101_SH050',
  prompt: 'rain on a neon street',
  width: 64,
  height: 64,
  frames: { start: 1001, end: 1004 },
  seed: 11,
  ...extra,
});

async function run(body: Record<string, unknown>): Promise<JobResponse> {
  const created = await api.createJob(body);
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  const job = await api.waitForJob(created.body.id, isFinished);
  expect(job.status, JSON.stringify(job)).toBe('succeeded');
  return job;
}

async function object(s: LocalStack, url: string): Promise<Buffer> {
  const { bucket, s3 } = s.app.frameStore;
  expect(url.startsWith(`s3://${bucket}/`), url).toBe(true);
  const got = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: url.slice(`s3://${bucket}/`.length) }),
  );
  return Buffer.from(await got.Body!.transformToByteArray());
}

/** Reads the job's .otio beside its manifest, checks it, and resolves every frame it names to a stored frame. */
async function expectTimelineResolves(job: JobResponse, ext: string): Promise<string[]> {
  const doc = JSON.parse((await object(stack, `${job.outputPrefix}${job.shot}.otio`)).toString('utf8'));
  const [ref, ...more] = checkOtio(doc);
  expect(more).toHaveLength(0);
  expect(ref!.target_url_base).toBe(job.outputPrefix);
  const urls = sequenceUrls(ref!);
  const frames = await api.allFrames(job.id);
  expect(urls.map((u) => u.frame)).toEqual(frames.map((f) => f.frame));
  for (const { frame, url } of urls) {
    expect(url.endsWith(`.${ext}`)).toBe(true);
    const bytes = await object(stack, url);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(
      frames.find((f) => f.frame === frame)!.sha256,
    );
  }
  return urls.map((u) => u.url.slice(job.outputPrefix.length));
}

describe("a production's naming template", () => {
  it('names the frames of a first job v001 with the default pass, and its timeline names each one', async () => {
    const job = await run(shot());
    expect(job.output).toEqual({ format: 'png', pass: 'comp', version: 1 });
    expect(await expectTimelineResolves(job, 'png')).toEqual([
      'EP101_SH050_comp_v001.1001.png',
      'EP101_SH050_comp_v001.1002.png',
      'EP101_SH050_comp_v001.1003.png',
      'EP101_SH050_comp_v001.1004.png',
    ]);
  });

  it('bumps the version on a re-submit of the shot, and takes a version and pass the job names', async () => {
    const again = await run(shot({ output: { format: 'exr' } }));
    expect(again.output).toEqual({ format: 'exr', pass: 'comp', version: 2 });
    const names = await expectTimelineResolves(again, 'exr');
    expect(names[0]).toBe('EP101_SH050_comp_v002.1001.exr');
    const first = await object(stack, `${again.outputPrefix}${names[0]}`);
    expect(await exrInfo(first)).toMatch(/colorSpace: "ACEScg"/);

    const named = await run(shot({ output: { pass: 'fg', version: 7 } }));
    expect((await expectTimelineResolves(named, 'png'))[3]).toBe('EP101_SH050_fg_v007.1004.png');
  });

  it('keeps re-rolls of an EXR job as EXR named by the template, the version bumped, and selects onto the sequence name', async () => {
    const job = await run(shot({ output: { format: 'exr' }, frames: { start: 1001, end: 1002 } }));
    const v = job.output!.version!;
    const sequence = `EP101_SH050_comp_v${String(v).padStart(3, '0')}.1002.exr`;
    const first = await api.allFrames(job.id);
    const reroll = await api.call<{ version: number }>('POST', `/v1/jobs/${job.id}/frames/1002/retry`, {
      seed: 77,
    });
    expect(reroll.status, JSON.stringify(reroll.body)).toBe(202);
    expect(reroll.body.version).toBe(2);
    const detail = await eventually(async () => {
      const d = await api.call<FrameDetail>('GET', `/v1/jobs/${job.id}/frames/1002`);
      return d.body.versions.at(-1)?.status === 'succeeded' ? d.body : undefined;
    }, 're-roll made');
    const [v1, v2] = detail.versions;
    const prefix = job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
    // Version 1 is kept beside the sequence under its own name; the re-roll is one version up, as EXR.
    expect(v1!.key).toBe(`${prefix}versions/${sequence}`);
    expect(v2!.key).toBe(`${prefix}versions/EP101_SH050_comp_v${String(v + 1).padStart(3, '0')}.1002.exr`);
    const made = await object(stack, `${job.outputPrefix}${v2!.key!.slice(prefix.length)}`);
    expect(await exrInfo(made)).toMatch(/half openexr/);
    expect(await exrInfo(made)).toMatch(/colorSpace: "ACEScg"/);
    expect(createHash('sha256').update(made).digest('hex')).toBe(v2!.sha256);
    expect(v1!.sha256).toBe(first.find((f) => f.frame === 1002)!.sha256);

    const selected = await api.call('POST', `/v1/jobs/${job.id}/frames/1002/select`, { version: 2 });
    expect(selected.status, JSON.stringify(selected.body)).toBe(200);
    const onSequence = await object(stack, `${job.outputPrefix}${sequence}`);
    expect(createHash('sha256').update(onSequence).digest('hex')).toBe(v2!.sha256);
    // No PNG was written under the EXR sequence's name or its versions.
    const { s3, bucket } = stack.app.frameStore;
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    expect(keys).toContain(`${prefix}${sequence}`);
    expect(keys.filter((k) => k.endsWith('.png'))).toEqual([]);

    expect((await api.call('POST', `/v1/jobs/${job.id}/frames/1002/select`, { version: 1 })).status).toBe(
      200,
    );
    const back = await object(stack, `${job.outputPrefix}${sequence}`);
    expect(createHash('sha256').update(back).digest('hex')).toBe(v1!.sha256);
  });

  it('refuses a pass that would make an illegal name, naming the field', async () => {
    const res = await api.createJob(shot({ output: { pass: 'fg/../x' } }));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('body.output.pass');
  });
});

describe('a machine without oiiotool', () => {
  let bare: LocalStack;
  let bareApi: ReturnType<typeof client>;
  beforeAll(async () => {
    bare = await startLocalStack({ env: { [ENV.oiiotool]: 'oiiotool-is-not-installed-here' } });
    bareApi = client(bare.url, await bare.createApiKey('bare'));
  });
  afterAll(() => bare?.stop());

  it("fails an EXR job's frames naming Debian's package, and still makes PNG jobs", async () => {
    const created = await bareApi.createJob(
      shot({ output: { format: 'exr' }, frames: { start: 1, end: 2 } }),
    );
    const job = await bareApi.waitForJob(created.body.id, isFinished);
    expect(job.status).toBe('failed');
    expect(job.failedFrames).toEqual([1, 2]);
    const frames = await bareApi.allFrames(job.id);
    for (const f of frames) expect(f.error).toBe(OIIO_MISSING);
    expect(OIIO_MISSING).toMatch(/apt-get install openimageio-tools/);

    const png = await bareApi.createJob(shot({ frames: { start: 1, end: 2 } }));
    expect((await bareApi.waitForJob(png.body.id, isFinished)).status).toBe('succeeded');
  });
});
