/**
 * Money, in one place (docs/operations.md, "Prices, spend and budgets"): GPU prices, the spend of frames,
 * estimates before a job runs and the state of a budget. Pure: no AWS, no clock but the one handed in.
 *
 * Amounts are integers: GPU time in milliseconds, money in micro-dollars (1 USD = 1,000,000), so sums
 * over millions of frames never drift the way floats do. Dollars appear only in responses.
 */

export const MICROS_PER_USD = 1_000_000;
const MS_PER_HOUR = 3_600_000;

/**
 * On-demand list prices, USD per instance-hour, Linux, us-east-1, as AWS published them in 2025
 * (`LIST_PRICES_AS_OF`). Defaults only: a production names its own (Spot, Savings Plans, another region)
 * in its config's `cost.gpuHourUsd`, which wins over these.
 */
export const GPU_LIST_PRICES_USD: Readonly<Record<string, number>> = {
  'g4dn.xlarge': 0.526,
  'g4dn.2xlarge': 0.752,
  'g5.xlarge': 1.006,
  'g5.2xlarge': 1.212,
  'g6.xlarge': 0.8048,
  'g6.2xlarge': 0.9776,
  'g6e.xlarge': 1.861,
  'g6e.2xlarge': 2.24208,
  'p4d.24xlarge': 32.7726,
  'p5.48xlarge': 55.04,
};
export const LIST_PRICES_AS_OF = '2025-06';

/** What a frame of a host with no price costs: local mode's CPU reference model is priced as a g6.xlarge. */
export const DEFAULT_GPU_HOUR_USD = 0.8048;

/** Seconds of GPU per megapixel of frame that a model with no history is assumed to take. */
export const DEFAULT_PRIOR_SECONDS_PER_MEGAPIXEL = 2;

export const usdToMicros = (usd: number): number => Math.round(usd * MICROS_PER_USD);
export const microsToUsd = (micros: number): number => Math.round(micros) / MICROS_PER_USD;

/**
 * The price of an instance type, micro-dollars per hour: the production's own, else the list price, else
 * the default. The first of a production's `gpu.instanceTypes` is the one its hosts are priced at.
 */
export function gpuHourMicros(instanceType: string | undefined, own: Readonly<Record<string, number>> = {}) {
  const usd =
    (instanceType === undefined ? undefined : (own[instanceType] ?? GPU_LIST_PRICES_USD[instanceType])) ??
    DEFAULT_GPU_HOUR_USD;
  return usdToMicros(usd);
}

/** The spend of `gpuMs` milliseconds of a host priced at `hourMicros` micro-dollars an hour. */
export const spendMicros = (gpuMs: number, hourMicros: number): number =>
  Math.round((gpuMs * hourMicros) / MS_PER_HOUR);

/**
 * The GPU time a frame held: the time its model slot was held, as the task's share (a task whose model
 * serves `slots` predictions at once pays 1/slots of its host for each).
 */
export const gpuShareMs = (heldMs: number, slots: number): number =>
  Math.max(0, Math.round(heldMs / Math.max(1, slots)));

/** Spend as counted on a frame, a job, a usage item. */
export interface Spend {
  readonly gpuMs: number;
  readonly costMicros: number;
}

/** Spend as shown: seconds and dollars. */
export interface SpendView {
  readonly gpuSeconds: number;
  readonly usd: number;
}

export const spendView = (s: Partial<Spend>): SpendView => ({
  gpuSeconds: Math.round(s.gpuMs ?? 0) / 1000,
  usd: microsToUsd(s.costMicros ?? 0),
});

/** The UTC day (yyyy-mm-dd) and month (yyyy-mm) a spend is booked on. */
export const dayOf = (at: Date): string => at.toISOString().slice(0, 10);
export const monthOf = (at: Date): string => at.toISOString().slice(0, 7);

// ---- estimates ---------------------------------------------------------------------------------------

/** What a model's finished jobs add up to: the basis of its estimates. */
export interface ModelHistory {
  readonly gpuMs: number;
  /** Width × height × frames recorded, summed over its jobs. */
  readonly pixels: number;
}

export interface EstimateInput {
  readonly width: number;
  readonly height: number;
  readonly frames: number;
  /** The model's recorded history; none yet: the prior. */
  readonly history?: ModelHistory | undefined;
  readonly priorSecondsPerMegapixel: number;
  readonly hourMicros: number;
  /** Frames waiting on the model's queue ahead of this job. */
  readonly backlogFrames: number;
  /** Predictions the model's fleet makes at once (tasks × slots), at its full size. */
  readonly fleetSlots: number;
  readonly now: Date;
}

export interface Estimate {
  readonly gpuSeconds: number;
  readonly usd: number;
  /** Milli-seconds and micro-dollars, as stored beside the actual spend. */
  readonly gpuMs: number;
  readonly costMicros: number;
  readonly secondsPerMegapixel: number;
  /** `history`: the model's own record; `prior`: the configured guess for a model with none. */
  readonly basis: 'history' | 'prior';
  readonly backlogFrames: number;
  readonly expectedStart: string;
  readonly expectedFinish: string;
}

/**
 * GPU time and cost of a job before it runs, and when it should start and finish: the model's recorded
 * seconds per megapixel-frame (a windowed model's window time is shared out over its frames, so the
 * same measure serves), the backlog ahead at the same rate, spread over the fleet's slots.
 */
export function estimateJob(input: EstimateInput): Estimate {
  const megapixels = (input.width * input.height) / 1e6;
  const fromHistory = input.history !== undefined && input.history.pixels > 0 && input.history.gpuMs > 0;
  const secondsPerMegapixel = fromHistory
    ? input.history!.gpuMs / 1000 / (input.history!.pixels / 1e6)
    : input.priorSecondsPerMegapixel;
  const perFrameMs = secondsPerMegapixel * megapixels * 1000;
  const gpuMs = Math.round(perFrameMs * input.frames);
  const slots = Math.max(1, input.fleetSlots);
  const waitMs = (input.backlogFrames * perFrameMs) / slots;
  const runMs = gpuMs / slots;
  const start = new Date(input.now.getTime() + waitMs);
  return {
    gpuSeconds: gpuMs / 1000,
    usd: microsToUsd(spendMicros(gpuMs, input.hourMicros)),
    gpuMs,
    costMicros: spendMicros(gpuMs, input.hourMicros),
    secondsPerMegapixel: Math.round(secondsPerMegapixel * 1e6) / 1e6,
    basis: fromHistory ? 'history' : 'prior',
    backlogFrames: input.backlogFrames,
    expectedStart: start.toISOString(),
    expectedFinish: new Date(start.getTime() + runMs).toISOString(),
  };
}

// ---- budgets -----------------------------------------------------------------------------------------

/** A monthly budget: its limit and the two thresholds, in percent of it. */
export interface Budget {
  readonly limitMicros: number;
  readonly warningPercent: number;
  readonly stopPercent: number;
}

export type BudgetLevel = 'ok' | 'warning' | 'stopped';

export function budgetLevel(spentMicros: number, budget: Budget): BudgetLevel {
  if (spentMicros * 100 >= budget.stopPercent * budget.limitMicros) return 'stopped';
  if (spentMicros * 100 >= budget.warningPercent * budget.limitMicros) return 'warning';
  return 'ok';
}

/** What is left before the stop threshold, micro-dollars (never negative). */
export const budgetLeftMicros = (spentMicros: number, budget: Budget): number =>
  Math.max(0, Math.floor((budget.stopPercent * budget.limitMicros) / 100) - spentMicros);
