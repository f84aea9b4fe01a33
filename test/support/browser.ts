import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import sharp from 'sharp';

/**
 * Debian's Chromium, headless, driven by playwright-core (which never downloads a browser), with a fresh
 * profile each time. `.ci/run` installs the `chromium` package when it is missing.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'framecast-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1440, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Where the browser tests write their screenshots (gitignored). */
export const RESULTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-results');

export async function resultPath(name: string): Promise<string> {
  await mkdir(RESULTS, { recursive: true });
  return join(RESULTS, name);
}

/**
 * How much a PNG varies: the standard deviation of its pixels, per channel, averaged (0 for one flat
 * colour), and how many distinct colours a 64x64 reduction of it holds.
 */
export async function pictureVariety(png: Buffer): Promise<{ stdev: number; colours: number }> {
  const stats = await sharp(png).removeAlpha().stats();
  const stdev = stats.channels.reduce((sum, c) => sum + c.stdev, 0) / stats.channels.length;
  const small = await sharp(png).removeAlpha().resize(64, 64, { fit: 'fill' }).raw().toBuffer();
  const colours = new Set<number>();
  for (let i = 0; i < small.length; i += 3)
    colours.add((small[i]! << 16) | (small[i + 1]! << 8) | small[i + 2]!);
  return { stdev, colours: colours.size };
}
