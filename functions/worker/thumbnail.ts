import { ModelError } from './cog.ts';

/**
 * A frame's thumbnail for the review page: WebP, 256 px wide (never enlarged), a few KB. Made by sharp,
 * loaded on first use: a native module, kept out of anything but the worker.
 */
export const THUMBNAIL_WIDTH = 256;

async function loadSharp() {
  try {
    return (await import('sharp')).default;
  } catch (err) {
    throw new ModelError(`thumbnails need sharp, which cannot load: ${(err as Error).message}`);
  }
}

export async function thumbnail(png: Uint8Array): Promise<Uint8Array> {
  const sharp = await loadSharp();
  return sharp(png)
    .resize({ width: THUMBNAIL_WIDTH, withoutEnlargement: true })
    .webp({ quality: 70, effort: 2 })
    .toBuffer();
}
