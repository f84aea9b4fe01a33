import type { AssetFiles } from '../adapters/asset-files.ts';
import type { AssetStore } from '../adapters/store/assets.ts';
import {
  type AssetFileRecord,
  type AssetFrame,
  type AssetLimits,
  type AssetRecord,
  type AssetResponse,
  type AssetStatus,
  type AssetUpload,
  type AssetUploads,
  assetFilesSchema,
  assetRequestSchema,
  FORMAT_NAMES,
  fileLabel,
  fileListIssue,
  ImageError,
  type ImageInfo,
  incomplete,
  invalidAsset,
  missingFiles,
  probeImage,
  toAssetResponse,
} from '../core/assets.ts';
import { limiter, mapLimit } from '../core/concurrency.ts';
import { decodeCursor, encodeCursor } from '../core/cursor.ts';
import { FramecastError, invalid, notFound } from '../core/errors.ts';
import { isAssetId, newAssetId } from '../core/ids.ts';
import { parse } from '../core/validation.ts';

/** What the asset service needs from the outside: the table, and the content in S3. */
export interface AssetServiceDeps extends AssetLimits {
  readonly store: AssetStore;
  readonly files: Pick<AssetFiles, 'presignPut' | 'presignGet' | 'holds' | 'read' | 'deleteMany'>;
  /** How long a download URL of a file is good for. @default 3600 */
  readonly urlExpirySeconds?: number;
  /** S3 requests in flight at once for one API request (HEADs, ranged GETs, deletes). */
  readonly concurrency?: number;
}

/** The files of each content, the content's first file first, contents in the order they first appear. */
function byContent(files: readonly AssetFileRecord[]): AssetFileRecord[][] {
  const groups = new Map<string, AssetFileRecord[]>();
  for (const file of files) {
    const group = groups.get(file.sha256);
    if (group) group.push(file);
    else groups.set(file.sha256, [file]);
  }
  return [...groups.values()];
}

/**
 * Plates, masks, control passes and reference stills (docs/architecture.md, "Assets"): announced by
 * content, uploaded straight to S3 with presigned PUTs that S3 checks, completed once every file is
 * stored and is what the asset says, shared between assets by content and removed with the last one.
 */
export class AssetService {
  private readonly requestSchema;
  private readonly filesSchema;
  private readonly concurrency: number;

  constructor(private readonly deps: AssetServiceDeps) {
    this.requestSchema = assetRequestSchema(deps);
    this.filesSchema = assetFilesSchema(deps);
    this.concurrency = deps.concurrency ?? 32;
  }

  /** `POST /v1/assets`: the asset, uploading, and an upload URL for each content not held yet. */
  async create(tenant: string, body: unknown, now = new Date()): Promise<AssetUploads> {
    if (body === undefined) throw invalid('body', 'a JSON asset request is required');
    const request = parse(this.requestSchema, body);
    const asset: AssetRecord = {
      id: newAssetId(now.getTime()),
      tenant,
      name: request.name,
      format: request.format,
      ...(request.frames && { frames: request.frames }),
      status: 'uploading',
      files: 0,
      createdAt: now.toISOString(),
    };
    await this.deps.store.createAsset(asset);
    return this.announce(asset, request.files);
  }

  /**
   * `POST /v1/assets/{id}/files`: more files of an uploading asset (a long sequence comes in pages), or
   * files announced before, again, for fresh upload URLs. A frame keeps the content it was announced with.
   */
  async addFiles(tenant: string, id: string, body: unknown): Promise<AssetUploads> {
    if (body === undefined) throw invalid('body', 'a JSON list of files is required');
    const { files } = parse(this.filesSchema, body);
    const asset = await this.tenantAsset(tenant, id);
    const issue = fileListIssue(asset.frames, files);
    if (issue) throw invalid(['body', 'files', ...issue.path].join('.'), issue.message);
    if (asset.status !== 'uploading') throw notUploading(asset);
    return this.announce(asset, files);
  }

  /**
   * Records the files not yet recorded, and answers an upload URL for each content of the request that
   * storage does not hold. Storage is asked only once the asset is among the content's holders (no
   * removal can start after that, docs/architecture.md), and it is asked while the next transaction
   * runs, so a page of 1000 files costs about its transactions' time.
   */
  private async announce(asset: AssetRecord, files: readonly AssetFileRecord[]): Promise<AssetUploads> {
    const run = limiter(this.concurrency);
    const checks = new Map<string, Promise<AssetUpload | undefined>>();
    const check = (recorded: readonly AssetFileRecord[]) => {
      for (const file of recorded) {
        if (!checks.has(file.sha256))
          checks.set(
            file.sha256,
            run(() => this.uploadFor(asset.tenant, file)),
          );
      }
    };
    try {
      for (let round = 0; ; round++) {
        const recorded =
          asset.files === 0 && round === 0
            ? new Map<number | undefined, AssetFileRecord>()
            : await this.deps.store.getFiles(
                asset.id,
                files.map((f) => f.frame),
              );
        const fresh: AssetFileRecord[] = [];
        for (const [i, file] of files.entries()) {
          const was = recorded.get(file.frame);
          if (!was) fresh.push(file);
          else if (was.sha256 !== file.sha256 || was.size !== file.size) {
            throw new FramecastError(
              'conflict',
              `body.files.${i}: ${fileLabel(file)} was announced with other content (sha256 ${was.sha256}, ${was.size} bytes); an asset's files do not change`,
              { field: `body.files.${i}`, frame: file.frame },
            );
          }
        }
        check(files.filter((f) => recorded.has(f.frame)));
        const written = await this.deps.store.addFiles(asset, fresh, check);
        if (written.ok) break;
        if (written.reason === 'asset') throw notUploading(await this.tenantAsset(asset.tenant, asset.id));
        // A concurrent request recorded some of these frames first: read them again.
        if (round >= 2)
          throw new FramecastError('conflict', 'the asset is being announced by another request; retry');
      }
    } finally {
      // Checks under way finish (or fail) before the answer, whatever it is.
      await Promise.allSettled(checks.values());
    }
    const uploads = (await Promise.all(checks.values()))
      .filter((u): u is AssetUpload => u !== undefined)
      .sort((a, b) => (a.frame ?? 0) - (b.frame ?? 0));
    const now = (await this.deps.store.getAsset(asset.id)) ?? asset;
    return { ...toAssetResponse(now), uploads };
  }

  /** A presigned PUT for the content of `file`, unless storage holds it as announced. */
  private async uploadFor(tenant: string, file: AssetFileRecord): Promise<AssetUpload | undefined> {
    if (await this.deps.files.holds(tenant, file)) return undefined;
    const { url, headers, expiresAt } = await this.deps.files.presignPut(tenant, file);
    return {
      ...(file.frame !== undefined && { frame: file.frame }),
      sha256: file.sha256,
      size: file.size,
      url,
      method: 'PUT',
      headers,
      expiresAt: expiresAt.toISOString(),
    };
  }

  /**
   * `POST /v1/assets/{id}/complete`: every file is stored as announced (else a 409 naming the missing
   * frames), of the asset's format by its magic number, within the size limit, and of one width and
   * height, which the asset records as it becomes `ready`. A file that is not what the asset says fails
   * the asset (422): its content cannot change, so sending it again would not help. Repeating a complete
   * answers the same.
   */
  async complete(tenant: string, id: string, now = new Date()): Promise<AssetResponse> {
    const asset = await this.tenantAsset(tenant, id);
    if (asset.status === 'ready') return toAssetResponse(asset);
    if (asset.status === 'failed') throw invalidAsset(asset.error ?? 'the asset failed');
    const files = await this.deps.store.listFiles(asset.id);
    const contents = byContent(files);
    const held = await mapLimit(contents, this.concurrency, (group) =>
      this.deps.files.holds(tenant, group[0]!),
    );
    const stored = new Set(contents.filter((_, i) => held[i]).map((group) => group[0]!.sha256));
    const missing = missingFiles(asset, files, stored);
    if (missing.count > 0) throw incomplete(asset, missing);

    const problem = await this.inspect(asset, contents);
    if (typeof problem === 'string') {
      const failed = await this.deps.store.finishAsset(asset.id, { status: 'failed', error: problem });
      if (!failed) return this.complete(tenant, id, now); // changed meanwhile: answer for what it is now
      throw invalidAsset(problem);
    }
    const ready = await this.deps.store.finishAsset(asset.id, {
      status: 'ready',
      width: problem.width,
      height: problem.height,
      completedAt: now.toISOString(),
    });
    if (!ready) return this.complete(tenant, id, now);
    return toAssetResponse(ready);
  }

  /** The size every content shares, or what is wrong, naming the first file of the content. */
  private async inspect(
    asset: AssetRecord,
    contents: readonly AssetFileRecord[][],
  ): Promise<{ width: number; height: number } | string> {
    const { store, files, maxFileBytes } = this.deps;
    // The bytes of a hash never change: a header read once (for this asset or another) is not read again,
    // and what is read is recorded as it comes, so a complete cut short by its timeout resumes.
    const known = await store.imagesOf(
      asset.tenant,
      contents.map((group) => group[0]!.sha256),
    );
    const learnt: { sha256: string; image: ImageInfo }[] = [];
    const writes: Promise<void>[] = [];
    const record = (force = false) => {
      if (learnt.length >= RECORD_BATCH || (force && learnt.length > 0))
        writes.push(store.recordImages(asset.tenant, learnt.splice(0, RECORD_BATCH)));
    };
    const infos = await mapLimit(contents, this.concurrency, async (group): Promise<ImageInfo | string> => {
      const file = group[0]!;
      if (file.size > maxFileBytes)
        return `${fileLabel(file)}: is ${file.size} bytes, over the per-file limit of ${maxFileBytes}`;
      const seen = known.get(file.sha256);
      if (seen) return seen;
      try {
        const image = await probeImage(
          (offset, length) => files.read(asset.tenant, file.sha256, offset, length),
          file.size,
        );
        learnt.push({ sha256: file.sha256, image });
        record();
        return image;
      } catch (err) {
        if (err instanceof ImageError) return `${fileLabel(file)}: ${err.message}`;
        throw err;
      }
    }).finally(async () => {
      record(true);
      await Promise.all(writes);
    });
    let first: { file: AssetFileRecord; info: ImageInfo } | undefined;
    for (const [i, info] of infos.entries()) {
      const file = contents[i]![0]!;
      if (typeof info === 'string') return info;
      if (info.format !== asset.format)
        return `${fileLabel(file)}: is ${article(FORMAT_NAMES[info.format])} file, not ${FORMAT_NAMES[asset.format]} as the asset says`;
      first ??= { file, info };
      if (info.width !== first.info.width || info.height !== first.info.height) {
        return `${fileLabel(file)}: is ${info.width}x${info.height}, ${fileLabel(first.file)} is ${first.info.width}x${first.info.height}; every file of an asset has one size`;
      }
    }
    return { width: first!.info.width, height: first!.info.height };
  }

  async get(tenant: string, id: string): Promise<AssetResponse> {
    return toAssetResponse(await this.tenantAsset(tenant, id));
  }

  /**
   * `GET /v1/assets/{id}/frames/{frame}`: a download URL of the file a frame of a ready asset holds (the
   * review page shows a render beside its plate). A still answers for every frame, as a job's input does.
   */
  async frame(tenant: string, id: string, frame: number, now = new Date()): Promise<AssetFrame> {
    const asset = await this.tenantAsset(tenant, id);
    if (asset.status !== 'ready')
      throw new FramecastError(
        'conflict',
        `the asset is ${asset.status}: its files are read once it is ready`,
        {
          status: asset.status,
        },
      );
    const { frames } = asset;
    if (frames && (frame < frames.start || frame > frames.end))
      throw new FramecastError(
        'not_found',
        `frame ${frame} is not in the asset's frames ${frames.start}-${frames.end}`,
      );
    const file = (await this.deps.store.getFiles(id, [frames ? frame : undefined])).values().next().value;
    if (!file) throw notFound(`frame ${frame}`);
    const seconds = this.deps.urlExpirySeconds ?? 3600;
    return {
      asset: id,
      ...(file.frame !== undefined && { frame: file.frame }),
      sha256: file.sha256,
      size: file.size,
      url: await this.deps.files.presignGet(tenant, file.sha256, seconds),
      urlExpiresAt: new Date(now.getTime() + seconds * 1000).toISOString(),
    };
  }

  async list(tenant: string, q: { status?: AssetStatus; limit: number; cursor?: string }) {
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (after !== undefined && !isAssetId(after)) throw invalid('cursor', 'is not a cursor of this listing');
    const { assets, last } = await this.deps.store.listAssets(tenant, {
      limit: q.limit,
      ...(q.status !== undefined && { status: q.status }),
      ...(after !== undefined && { after }),
    });
    return { assets: assets.map(toAssetResponse), ...(last && { nextCursor: encodeCursor(last) }) };
  }

  /**
   * `DELETE /v1/assets/{id}`: the asset, its files, and the content no other asset of the tenant holds.
   * The asset is marked first, so nothing is added to it meanwhile; a delete cut short leaves it marked
   * (and not found), and repeating the DELETE finishes it.
   *
   * Content is deleted from S3 under a removal claim, taken in the same update that takes the asset out
   * of the content's holders, and only when no other asset holds it; a new holder is added only while no
   * claim is on it. So a content is never deleted while an asset holds it, and an announce that meets a
   * claim waits for the removal to end, then finds the content gone and asks for an upload.
   */
  async delete(tenant: string, id: string): Promise<void> {
    const { store, files } = this.deps;
    const asset = isAssetId(id) ? await store.getAsset(id) : undefined;
    const token = asset?.tenant === tenant ? await store.markDeleting(id) : undefined;
    if (!token) throw notFound('asset');
    const recorded = await store.listFiles(id);
    const contents = [...new Set(recorded.map((f) => f.sha256))];
    const claimed = await store.releaseContents(tenant, id, contents, token);
    try {
      await files.deleteMany(tenant, claimed);
    } catch (err) {
      await store.releaseClaims(tenant, claimed, token);
      throw err;
    }
    await store.dropClaimed(tenant, claimed);
    await store.deleteAsset(id, recorded);
  }

  /** An asset of this tenant that is not being deleted; anything else is "not found", never "forbidden". */
  private async tenantAsset(tenant: string, id: string): Promise<AssetRecord> {
    const asset = isAssetId(id) ? await this.deps.store.getAsset(id) : undefined;
    if (!asset || asset.tenant !== tenant || asset.status === 'deleting') throw notFound('asset');
    return asset;
  }
}

/** Header readings written to the table at once. */
const RECORD_BATCH = 99;

const article = (word: string) => (/^[AEIOU]/.test(word) ? `an ${word}` : `a ${word}`);

function notUploading(asset: AssetRecord): FramecastError {
  return new FramecastError(
    'conflict',
    `the asset is ${asset.status}: its files cannot change; announce a new asset`,
    { status: asset.status },
  );
}
