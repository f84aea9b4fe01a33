import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CostSettingsSchema } from '../../functions/shared/cost.ts';
import { ModelSpecsSchema } from '../../functions/shared/models.ts';
import { QUEUES } from '../../functions/shared/resources.ts';
import { assertProductionName, loadProductionConfig, parseConfig } from '../../lib/config.ts';
import { costSettings, modelSpecs } from '../../lib/framecast-stack.ts';
import { PROJECT_ROOT } from '../../lib/lambda.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const configDir = (files: Record<string, string>) => {
  const dir = mkdtempSync(join(tmpdir(), 'framecast-config-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
};

describe('production config', () => {
  it('gives a production without a config file the documented defaults', () => {
    const config = loadProductionConfig('demo', configDir({}));
    expect(config).toMatchObject({
      production: 'demo',
      costCenter: 'unassigned',
      removalPolicy: 'retain',
      gpu: {
        instanceTypes: ['g6.xlarge', 'g5.xlarge'],
        spot: false,
        maxInstances: 2,
        volumeSizeGiB: 100,
        targetBacklogPerTask: 4,
      },
      network: { natGateways: 0 },
      frameLimit: 10_000,
      chunkSize: 8,
      maxAttempts: 3,
      presignedUrlExpirySeconds: 3600,
      webhookAllowedHosts: [],
      monthlyBudgetUsd: 1000,
      logRetentionDays: 30,
      api: { rateLimit: 50, burstLimit: 100 },
    });
    expect(config.models).toEqual([
      { name: 'reference', image: 'builtin', gpuCount: 0, memoryMiB: 1024, concurrency: 2, maxTasks: 1 },
    ]);
    // Frames are deliverables: kept until the production deletes them, unless it sets a retention.
    expect(config.retentionDays).toBeUndefined();
  });

  it("defaults the colour pipeline to the project's OCIO config, ACEScg plates, an sRGB model and ZIP", () => {
    expect(loadProductionConfig('demo', configDir({})).colour).toEqual({
      ocioConfig: 'colour/framecast.ocio',
      plates: 'ACEScg',
      model: 'sRGB - Texture',
      exrCompression: 'zip',
    });
  });

  it.each([
    [{ ocioConfig: '/etc/show.ocio' }, /colour\.ocioConfig: must be an OCIO config in the colour\/ folder/],
    [{ ocioConfig: 'colour/../x.ocio' }, /colour\.ocioConfig/],
    [{ plates: 'ACEScg"; rm -rf /' }, /colour\.plates: must be an OCIO colour space name/],
    [{ exrCompression: 'dwaa' }, /colour\.exrCompression/],
    [{ plate: 'ACEScg' }, /colour\.plate: unknown field/],
  ])('refuses the colour settings %j, naming the field', (colour, message) => {
    const dir = configDir({ 'demo.json': JSON.stringify({ colour }) });
    expect(() => loadProductionConfig('demo', dir)).toThrow(message);
  });

  it('refuses a show OCIO config the project does not hold', () => {
    const dir = configDir({ 'demo.json': JSON.stringify({ colour: { ocioConfig: 'colour/show.ocio' } }) });
    expect(() => loadProductionConfig('demo', dir)).toThrow(
      /colour\.ocioConfig: colour\/show\.ocio does not exist/,
    );
  });

  it('accepts the documented example, config/example.json', () => {
    const config = loadProductionConfig('example', join(PROJECT_ROOT, 'config'));
    expect(config.gpu.spot).toBe(true);
    expect(config.models.map((m) => m.name)).toEqual(['reference', 'sdxl']);
  });

  it.each(['Bad_Name', 'a', '1st', 'x'.repeat(32), 'demo.prod'])(
    'refuses the production name %j, saying what a valid one is',
    (name) => {
      expect(() => assertProductionName(name)).toThrow(
        /Invalid production name .* must match \^\[a-z\]\[a-z0-9-\]\{1,30\}\$/,
      );
    },
  );

  it('asks for -c production=<name> when no production is given', () => {
    expect(() => loadProductionConfig(undefined, configDir({}))).toThrow(/-c production=<name>/);
  });

  it('names the file and the field of an invalid value', () => {
    const dir = configDir({ 'demo.json': JSON.stringify({ gpu: { maxInstances: 0 } }) });
    expect(() => loadProductionConfig('demo', dir)).toThrow(
      /config\/demo\.json:\n {2}gpu\.maxInstances: Too small/,
    );
  });

  it('refuses an unknown field, naming it', () => {
    expect(() => parseConfig('demo', { gpu: { spots: true } })).toThrow(/gpu\.spots: unknown field/);
    expect(() => parseConfig('demo', { retention: 30 })).toThrow(/retention: unknown field/);
  });

  it('names the file of a config that is not JSON', () => {
    const dir = configDir({ 'demo.json': '{ "gpu": ' });
    expect(() => loadProductionConfig('demo', dir)).toThrow(/config\/demo\.json: not valid JSON/);
  });

  it('always deploys the reference model, with its settings overridable', () => {
    const config = parseConfig('demo', {
      models: [
        { name: 'sdxl', image: 'r8.im/owner/sdxl' },
        { name: 'reference', memoryMiB: 2048 },
      ],
    });
    expect(config.models.map((m) => m.name)).toEqual(['reference', 'sdxl']);
    expect(config.models[0]).toMatchObject({ image: 'builtin', gpuCount: 0, memoryMiB: 2048, maxTasks: 1 });
    expect(config.models[1]).toMatchObject({ gpuCount: 1, memoryMiB: 12_288, concurrency: 1, maxTasks: 2 });
  });

  it('needs an image for a model of the production', () => {
    expect(() => parseConfig('demo', { models: [{ name: 'sdxl' }] })).toThrow(/models\[0\]\.image: required/);
  });

  it('takes what a model declares: its inputs and, for a video model, its windows', () => {
    const config = parseConfig('demo', {
      models: [
        {
          name: 'wan',
          image: 'registry/wan:1',
          inputs: { image: 'images', mask: 'mask', reference: 'image' },
          frames: { window: 81, overlap: 16, lengths: '4n+1' },
        },
      ],
    });
    expect(config.models[1]).toMatchObject({
      inputs: { image: 'images', mask: 'mask', reference: 'image' },
      frames: { window: 81, overlap: 16, lengths: { multiple: 4, offset: 1 } },
    });
    expect(modelSpecs(config.models)).toEqual({
      wan: {
        inputs: { image: 'images', mask: 'mask', reference: 'image' },
        frames: { window: 81, overlap: 16, lengths: { multiple: 4, offset: 1 } },
      },
    });
    // What the stack writes, the runtime reads back alike.
    expect(ModelSpecsSchema.parse(JSON.parse(JSON.stringify(modelSpecs(config.models))))).toEqual(
      modelSpecs(config.models),
    );
  });

  it('refuses windows a model cannot make, naming the field', () => {
    const model = (frames: unknown) => ({ models: [{ name: 'wan', image: 'x', frames }] });
    expect(() => parseConfig('demo', model({ window: 48, overlap: 8, lengths: '4n+1' }))).toThrow(
      /models\[0\]\.frames: window 48 is not an allowed length/,
    );
    expect(() => parseConfig('demo', model({ window: 49, overlap: 30 }))).toThrow(
      /less than half the window/,
    );
    expect(() =>
      parseConfig('demo', { models: [{ name: 'wan', image: 'x', inputs: { Image: 'image' } }] }),
    ).toThrow(/models\[0\]\.inputs\.Image/);
  });

  it('refuses two models of one name', () => {
    const models = [
      { name: 'sdxl', image: 'a' },
      { name: 'sdxl', image: 'b' },
    ];
    expect(() => parseConfig('demo', { models })).toThrow(/models\[1\]\.name: duplicate model name "sdxl"/);
  });

  it('keeps maxAttempts under the frame queue maxReceiveCount less one', () => {
    const highest = QUEUES.frame.maxReceiveCount - 2;
    expect(parseConfig('demo', { maxAttempts: highest }).maxAttempts).toBe(highest);
    expect(() => parseConfig('demo', { maxAttempts: highest + 1 })).toThrow(/maxAttempts: Too big/);
  });

  it('refuses GPU hosts the x86_64 CUDA images cannot run on', () => {
    expect(() => parseConfig('demo', { gpu: { instanceTypes: ['g5g.xlarge'] } })).toThrow(
      /gpu\.instanceTypes\[0\]: needs x86_64/,
    );
    expect(() => parseConfig('demo', { gpu: { instanceTypes: ['m7i.xlarge'] } })).toThrow(
      /must be a GPU instance type/,
    );
  });

  it('adds no warm pool unless the config asks for one, and then keeps its hosts stopped by default', () => {
    expect(parseConfig('demo', {}).gpu.warmPool).toBeUndefined();
    const config = parseConfig('demo', { gpu: { instanceTypes: ['g6.xlarge'], warmPool: { size: 2 } } });
    expect(config.gpu.warmPool).toEqual({ size: 2, state: 'Stopped', reuseOnScaleIn: false });
    expect(
      parseConfig('demo', { gpu: { instanceTypes: ['g5.xlarge'], warmPool: { size: 1, state: 'Running' } } })
        .gpu.warmPool?.state,
    ).toBe('Running');
  });

  it.each([
    [
      'two instance types (the default list)',
      { warmPool: { size: 1 } },
      /gpu\.warmPool: needs exactly one instance type in gpu\.instanceTypes \(now 2\): AWS refuses a warm pool on a group with a mixed instances policy/,
    ],
    [
      'Spot hosts',
      { instanceTypes: ['g6.xlarge'], spot: true, warmPool: { size: 1 } },
      /gpu\.warmPool: needs on-demand hosts \(gpu\.spot: false\): AWS refuses a warm pool on a group that launches Spot Instances/,
    ],
    [
      'a pool larger than the group',
      { instanceTypes: ['g6.xlarge'], maxInstances: 2, warmPool: { size: 3 } },
      /gpu\.warmPool\.size: at most gpu\.maxInstances \(2\)/,
    ],
    [
      'hibernated hosts',
      { instanceTypes: ['g6.xlarge'], warmPool: { size: 1, state: 'Hibernated' } },
      /gpu\.warmPool\.state: Hibernated is not offered: hibernation keeps host memory, not the GPU/,
    ],
    [
      'a state AWS does not know',
      { instanceTypes: ['g6.xlarge'], warmPool: { size: 1, state: 'stopped' } },
      /gpu\.warmPool\.state: must be Stopped or Running/,
    ],
    [
      'hosts returned to the pool on scale-in',
      { instanceTypes: ['g6.xlarge'], warmPool: { size: 1, reuseOnScaleIn: true } },
      /gpu\.warmPool\.reuseOnScaleIn: must be false: ECS does not allow hosts of a capacity provider to return to the warm pool/,
    ],
    [
      'an empty pool',
      { instanceTypes: ['g6.xlarge'], warmPool: { size: 0 } },
      /gpu\.warmPool\.size: Too small/,
    ],
    [
      'a misspelt field',
      { instanceTypes: ['g6.xlarge'], warmPool: { size: 1, poolState: 'Stopped' } },
      /gpu\.warmPool\.poolState: unknown field/,
    ],
  ])('refuses a warm pool with %s, saying why', (_, gpu, message) => {
    expect(() => parseConfig('demo', { gpu })).toThrow(message);
  });

  it('accepts only the log retention periods CloudWatch Logs knows', () => {
    expect(() => parseConfig('demo', { logRetentionDays: 31 })).toThrow(
      /logRetentionDays: must be one of 1, 3, 5/,
    );
  });
});

describe('cost', () => {
  it('prices each model at the first instance type, list price unless the production names its own', () => {
    const listed = costSettings(parseConfig('demo', { gpu: { instanceTypes: ['g5.xlarge', 'g6.xlarge'] } }));
    expect(listed.models.reference).toEqual({ gpuHourUsd: 1.006, slots: 2 });
    expect(listed.priorSecondsPerMegapixel).toBe(2);
    expect(listed.budget).toBeUndefined();
    const own = costSettings(
      parseConfig('demo', {
        gpu: { instanceTypes: ['g6.xlarge'], maxInstances: 4 },
        models: [{ name: 'wan', image: 'registry.example/wan:1', concurrency: 2 }],
        cost: {
          gpuHourUsd: { 'g6.xlarge': 0.35 },
          priorSecondsPerMegapixel: 9,
          budget: { limitUsd: 5000 },
        },
      }),
    );
    expect(own.models.wan).toEqual({ gpuHourUsd: 0.35, slots: 8 });
    expect(own.budget).toEqual({ limitUsd: 5000, warningPercent: 80, stopPercent: 100 });
    // What the stack writes, the runtime reads back alike.
    expect(CostSettingsSchema.parse(JSON.parse(JSON.stringify(own)))).toEqual(own);
  });

  it('refuses a price for something that is not a GPU instance type, naming the field', () => {
    expect(() => parseConfig('demo', { cost: { gpuHourUsd: { 'm5.large': 0.1 } } })).toThrow(
      /cost\.gpuHourUsd/,
    );
    expect(() => parseConfig('demo', { cost: { budget: { limitUsd: -1 } } })).toThrow(
      /cost\.budget\.limitUsd/,
    );
  });
});
