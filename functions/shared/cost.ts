import * as z from 'zod';
import {
  DEFAULT_GPU_HOUR_USD,
  DEFAULT_PRIOR_SECONDS_PER_MEGAPIXEL,
  GPU_LIST_PRICES_USD,
} from '../core/cost.ts';

// The infrastructure prices hosts from the same table the runtime documents.
export { DEFAULT_GPU_HOUR_USD, DEFAULT_PRIOR_SECONDS_PER_MEGAPIXEL, GPU_LIST_PRICES_USD };

/**
 * FRAMECAST_COST: what money the runtime needs to know, set by the stack from the production's config
 * (lib/config.ts `cost`, priced by lib/framecast-stack.ts) and by local mode. Absent: local mode's
 * defaults (core/cost.ts), one slot per model and no production budget.
 */
export const BudgetSettingsSchema = z.strictObject({
  limitUsd: z.number().min(0).max(100_000_000),
  warningPercent: z.number().min(1).max(1000).default(80),
  stopPercent: z.number().min(1).max(1000).default(100),
});

export const CostSettingsSchema = z.strictObject({
  /** Per model: the price of an hour of the host its tasks run on, and the predictions its fleet makes at once. */
  models: z
    .record(
      z.string(),
      z.strictObject({
        gpuHourUsd: z.number().min(0).max(1000),
        slots: z.int().min(1).max(100_000),
      }),
    )
    .default({}),
  /** A model with no history is estimated at this many GPU seconds per megapixel of frame. */
  priorSecondsPerMegapixel: z.number().positive().max(10_000).default(DEFAULT_PRIOR_SECONDS_PER_MEGAPIXEL),
  /** The production's own monthly budget, over every tenant; none when absent. */
  budget: BudgetSettingsSchema.optional(),
});
export type CostSettings = z.output<typeof CostSettingsSchema>;

/** A model's price and fleet as configured, or local mode's defaults. */
export const modelCost = (settings: CostSettings, model: string) =>
  settings.models[model] ?? { gpuHourUsd: DEFAULT_GPU_HOUR_USD, slots: 1 };

/** The price of a host: the production's own for its instance type, else the list price, else the default. */
export const hostHourUsd = (instanceType: string, own: Readonly<Record<string, number>>): number =>
  own[instanceType] ?? GPU_LIST_PRICES_USD[instanceType] ?? DEFAULT_GPU_HOUR_USD;
