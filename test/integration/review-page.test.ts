import { writeFile } from 'node:fs/promises';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramecastClient, type Job } from '../../client/index.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';
import { plate, uploadSequence } from '../support/assets.ts';
import { launchBrowser, pictureVariety, resultPath } from '../support/browser.ts';

/**
 * The review page in a real browser (Debian's headless Chromium) against the local stack: a supervisor's
 * loop on a gated shot, from the contact sheet filling with the hero frames to approving, playing the
 * shot, re-rolling a frame and putting the new version in the sequence. Screenshots of the contact sheet
 * and the player go to test-results/ and must show pictures, not a blank page.
 */

const FRAMES = { start: 1001, end: 1016 };
const TOTAL = FRAMES.end - FRAMES.start + 1;
const HEROES = [1001, 1008, 1016];
const REROLLED = 1008;

let stack: LocalStack;
let api: FramecastClient;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;
let page: Page;
let job: Job;
const pageErrors: string[] = [];

beforeAll(async () => {
  [stack, browser] = await Promise.all([
    // Any origin may call the API: the last test opens the page on another one.
    startLocalStack({ env: { FRAMECAST_CORS_ORIGINS: '*' } }),
    launchBrowser(),
  ]);
  context = browser.context;
  api = new FramecastClient({ baseUrl: stack.url, apiKey: stack.apiKey });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const cell = (frame: number) => page.locator(`#sheet .cell[data-frame="${frame}"]`);
const succeededCells = () => page.locator('#sheet .cell[data-status="succeeded"]');
/** An image element's decoded width (0 while it has not loaded), read in the page. */
const naturalWidth = (img: unknown) => (img as { naturalWidth: number }).naturalWidth;
const counter = async () => Number(await page.locator('#frame-counter').textContent());

async function screenshot(name: string, shot: Buffer): Promise<void> {
  await writeFile(await resultPath(name), shot);
  const variety = await pictureVariety(shot);
  // A blank or flat page has a deviation near 0 and a handful of colours; frames have far more.
  expect(variety.stdev, `${name} varies`).toBeGreaterThan(12);
  expect(variety.colours, `${name} colours`).toBeGreaterThan(200);
}

describe('the review page', () => {
  it('opens on the API origin, takes the key into sessionStorage only, and lists the jobs', async () => {
    // The shot is made over a plate, which the page shows beside the render.
    const plateAsset = await uploadSequence(
      client(stack.url, stack.apiKey),
      'EP101_SH040_PL01',
      await plate(TOTAL, FRAMES.start, 3, [256, 144]),
    );
    job = await api.createJob({
      shot: 'EP101_SH040',
      inputs: { image: { asset: plateAsset.id } },
      params: { strength: 0.6 },
      prompt: 'a building collapses in slow motion, dust, dusk',
      frames: FRAMES,
      seed: 42,
      width: 256,
      height: 144,
      review: { frames: HEROES },
    });
    const res = await page.goto(`${stack.url}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.fill('#api-key', stack.apiKey);
    await page.click('#connect-button');
    await page.locator(`#job-list li[data-job="${job.id}"]`).waitFor();
    expect(page.url()).not.toContain(stack.apiKey);
    expect(await page.evaluate("sessionStorage.getItem('framecast.apiKey')")).toBe(stack.apiKey);
    expect(await context.cookies()).toEqual([]);
  });

  it('fills the contact sheet with the hero frames, then waits for review', async () => {
    await page.click(`#job-list li[data-job="${job.id}"]`);
    await page.locator('#job-status', { hasText: 'awaiting review' }).waitFor({ timeout: 20_000 });
    await expect.poll(() => succeededCells().count(), { timeout: 5_000 }).toBe(HEROES.length);
    for (const f of HEROES) expect(await cell(f).getAttribute('data-status')).toBe('succeeded');
    expect(await cell(1002).getAttribute('data-status')).toBe('pending');
    // Each landed frame shows its thumbnail, decoded.
    for (const f of HEROES)
      await expect.poll(() => cell(f).locator('img').evaluate(naturalWidth)).toBeGreaterThan(0);
    expect(await cell(HEROES[0]!).locator('img').getAttribute('src')).toContain('thumbnails');
    await screenshot('review-contact-sheet-gated.png', await page.locator('#sheet').screenshot());
  });

  it('approves the shot and the rest of the frames arrive', async () => {
    await page.click('#approve-button');
    await page.locator('#job-status', { hasText: 'succeeded' }).waitFor({ timeout: 20_000 });
    await expect.poll(() => succeededCells().count(), { timeout: 5_000 }).toBe(TOTAL);
    const approved = await api.getJob(job.id);
    expect(approved.review?.status).toBe('approved');
    expect(approved.review?.approvedBy?.tenant).toBe('dev');
    await screenshot('review-contact-sheet.png', await page.locator('#sheet').screenshot());
  });

  it('plays the shot at its frame rate and steps frame by frame with the keyboard', async () => {
    await cell(FRAMES.start).click();
    expect(await counter()).toBe(FRAMES.start);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    expect(await counter()).toBe(FRAMES.start + 2);
    await page.keyboard.press('ArrowLeft');
    expect(await counter()).toBe(FRAMES.start + 1);

    await page.keyboard.press('Space');
    expect(await page.locator('#play-button').textContent()).toBe('Pause');
    const seen = new Set<number>();
    await expect
      .poll(
        async () => {
          seen.add(await counter());
          return seen.size;
        },
        { timeout: 10_000, interval: 20 },
      )
      .toBeGreaterThan(5);
    await page.keyboard.press('Space');
    expect(await page.locator('#play-button').textContent()).toBe('Play');
    const stopped = await counter();
    expect(stopped).toBeGreaterThanOrEqual(FRAMES.start);
    expect(stopped).toBeLessThanOrEqual(FRAMES.end);
    // The player shows the frame, not the "pending" card of a frame not loaded.
    await expect
      .poll(async () => (await pictureVariety(await page.locator('#player').screenshot())).stdev, {
        timeout: 5_000,
      })
      .toBeGreaterThan(12);
    // Beside it, the plate frame it was made from.
    await expect
      .poll(() => page.locator('#plate-caption').textContent())
      .toBe(`image · EP101_SH040_PL01 ${stopped}`);
    await expect
      .poll(async () => (await pictureVariety(await page.locator('#plate').screenshot())).stdev, {
        timeout: 5_000,
      })
      .toBeGreaterThan(12);
    await screenshot('review-player.png', await page.locator('main').screenshot());
  });

  it('re-rolls one frame, selects the new version and shows its thumbnail in the sheet', async () => {
    await cell(REROLLED).click();
    await page.locator('#inspect-frame', { hasText: String(REROLLED) }).waitFor();
    const before = await cell(REROLLED).locator('img').getAttribute('src');
    await page.fill('#reroll-seed', '777');
    await page.click('#reroll-button');
    const v2 = page.locator('#versions li[data-version="2"]');
    await v2.locator('.select-version').waitFor({ timeout: 20_000 });
    expect(await v2.getAttribute('data-status')).toBe('succeeded');
    expect(await v2.textContent()).toContain('seed 777');
    await v2.locator('.select-version').click();
    await page.locator('#versions li.chosen[data-version="2"]').waitFor({ timeout: 10_000 });
    await cell(REROLLED).locator('.ver', { hasText: 'v2' }).waitFor({ timeout: 10_000 });
    await expect
      .poll(async () => {
        const img = cell(REROLLED).locator('img');
        const [src, width] = [await img.getAttribute('src'), await img.evaluate(naturalWidth)];
        return src !== before && width > 0;
      })
      .toBe(true);

    const frame = await api.getFrame(job.id, REROLLED);
    expect(frame.version).toBe(2);
    expect(frame.versions.map((v) => [v.version, v.selected, v.seed])).toEqual([
      [1, false, 42 + REROLLED - FRAMES.start],
      [2, true, 777],
    ]);
    expect(pageErrors).toEqual([]);
  });

  it('rejects a gated shot with a reason', async () => {
    const doomed = await api.createJob({
      shot: 'EP101_SH050',
      prompt: 'sparks in a dark hangar',
      frames: { start: 1, end: 8 },
      width: 64,
      height: 64,
      review: { frames: [1] },
    });
    await page.locator(`#job-list li[data-job="${doomed.id}"]`).click();
    await page.locator('#job-status', { hasText: 'awaiting review' }).waitFor({ timeout: 10_000 });
    await page.fill('#reject-reason', 'wrong building');
    await page.click('#reject-button');
    await page.locator('#job-status', { hasText: 'canceled' }).waitFor({ timeout: 5_000 });
    expect(await page.locator('#review-actions').isHidden()).toBe(true);
    const rejected = await api.getJob(doomed.id);
    expect(rejected.review).toMatchObject({ status: 'rejected', reason: 'wrong building' });
    expect(rejected.frames.succeeded).toBe(1);
  });

  it('shows the frame itself in the contact sheet where a job has no thumbnails', async () => {
    // No review gate and no ask: no thumbnails are made (docs/performance.md, "Cost").
    const plain = await api.createJob({
      shot: 'EP101_SH060',
      prompt: 'rain on a tin roof',
      frames: { start: 1, end: 4 },
      width: 64,
      height: 64,
    });
    expect(plain.thumbnails).toBe(false);
    await page.locator(`#job-list li[data-job="${plain.id}"]`).click();
    await page.locator('#job-status', { hasText: 'succeeded' }).waitFor({ timeout: 20_000 });
    await expect.poll(() => succeededCells().count(), { timeout: 5_000 }).toBe(4);
    const img = cell(1).locator('img');
    await expect.poll(() => img.evaluate(naturalWidth)).toBe(64);
    expect(await img.getAttribute('src')).not.toContain('thumbnails');
    expect(pageErrors).toEqual([]);
  });

  it('works with the API on another origin', async () => {
    // localhost and 127.0.0.1 are two origins: the page from one, the API at the other, through CORS.
    const elsewhere = await context.newPage();
    elsewhere.on('pageerror', (err) => pageErrors.push(err.message));
    const { port } = new URL(stack.url);
    await elsewhere.goto(`http://localhost:${port}/`);
    await elsewhere.fill('#api-url', stack.url);
    await elsewhere.fill('#api-key', stack.apiKey);
    await elsewhere.click('#connect-button');
    await elsewhere.locator(`#job-list li[data-job="${job.id}"]`).waitFor({ timeout: 10_000 });
    await elsewhere.click(`#job-list li[data-job="${job.id}"]`);
    await expect.poll(() => elsewhere.locator('#sheet .cell[data-status="succeeded"]').count()).toBe(TOTAL);
    expect(await elsewhere.locator('#message').textContent()).not.toMatch(/error|fetch/i);
    expect(pageErrors).toEqual([]);
  });
});
