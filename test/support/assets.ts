import { expect } from 'vitest';
import type { AssetResponse, AssetUpload, AssetUploads } from '../../functions/core/assets.ts';
import type { client } from './api.ts';
import { pngFrame, sha256Hex } from './images.ts';

/** A studio's uploader, as a script does it with the answers of the asset routes. */

type Api = ReturnType<typeof client>;

export const entry = (frame: number | undefined, bytes: Buffer) => ({
  ...(frame !== undefined && { frame }),
  sha256: sha256Hex(bytes),
  size: bytes.length,
});

/** PUTs `body` to an upload URL with exactly the headers it came with; answers the status and S3's text. */
export async function put(upload: AssetUpload, body: Buffer): Promise<{ status: number; text: string }> {
  const res = await fetch(upload.url, { method: upload.method, headers: upload.headers, body });
  return { status: res.status, text: await res.text() };
}

/** Uploads every URL of an answer, the bytes of the content it names; answers the bytes sent. */
export async function uploadAll(
  uploads: readonly AssetUpload[],
  bySha: ReadonlyMap<string, Buffer>,
): Promise<number> {
  let sent = 0;
  for (const upload of uploads) {
    const bytes = bySha.get(upload.sha256);
    if (!bytes) throw new Error(`asked for content nobody announced: ${upload.sha256}`);
    const { status, text } = await put(upload, bytes);
    expect(status, text).toBe(200);
    sent += bytes.length;
  }
  return sent;
}

/** A plate of `frames` PNG frames from `start`, each frame's pixels its own. */
export async function plate(frames: number, start = 1001, seed = 0, size: [number, number] = [64, 36]) {
  const bytes = await Promise.all(
    Array.from({ length: frames }, (_, i) => pngFrame(size[0], size[1], seed * 1000 + i)),
  );
  return {
    files: bytes.map((b, i) => entry(start + i, b)),
    bySha: new Map(bytes.map((b) => [sha256Hex(b), b])),
    bytes,
  };
}

/** Announces, uploads and completes a sequence (PNG unless told); answers the ready asset. */
export async function uploadSequence(
  api: Api,
  name: string,
  seq: Pick<Awaited<ReturnType<typeof plate>>, 'files' | 'bySha'>,
  format: 'png' | 'exr' = 'png',
): Promise<AssetResponse> {
  const frames = seq.files.map((f) => f.frame!);
  const created = await api.createAsset<AssetUploads>({
    name,
    format,
    frames: { start: Math.min(...frames), end: Math.max(...frames) },
    files: seq.files,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await uploadAll(created.body.uploads, seq.bySha);
  const done = await api.completeAsset<AssetResponse>(created.body.id);
  expect(done.status, JSON.stringify(done.body)).toBe(200);
  return done.body;
}

/** The plate-driven shot both input tests submit: frames 1001-1024 of a 64x64 plate, at strength 0.5. */
export const plateShot = (asset: string, extra: Record<string, unknown> = {}) => ({
  shot: 'EP101_SH040',
  prompt: 'a building collapses over the street, dust at dusk',
  width: 64,
  height: 64,
  frames: { start: 1001, end: 1024 },
  seed: 7,
  params: { strength: 0.5 },
  inputs: { image: { asset } },
  ...extra,
});
