import { createHash } from 'node:crypto';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { thumbnailKey } from '../core/frames.ts';

/** Makes the thumbnail of a frame PNG (the worker's, functions/worker/thumbnail.ts). */
export type Thumbnailer = (png: Uint8Array) => Promise<Uint8Array>;

/** Frames and manifests in S3. */
export class FrameStore {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
    /** Presigned URLs live this long at most (config: FRAMECAST_URL_EXPIRY_SECONDS). */
    private readonly maxUrlExpirySeconds = 3600,
    /** When set, frame PNGs stored get their thumbnail beside them (`thumbnailKey`) unless told not to. */
    private readonly thumbnailer?: Thumbnailer,
  ) {}

  /** This store, writing a thumbnail beside each frame it stores: the worker's, which has sharp. */
  withThumbnails(thumbnailer: Thumbnailer): FrameStore {
    return new FrameStore(this.s3, this.bucket, this.maxUrlExpirySeconds, thumbnailer);
  }

  /**
   * Uploads a frame. lib-storage streams it (multipart above 5 MB, so an 8K EXR-sized PNG never needs
   * to sit in one request), and the SHA-256 recorded for the frame travels as object metadata.
   * `thumbnail: false` stores the frame alone (a job without thumbnails: one PUT a frame, not two).
   */
  async putFrame(
    key: string,
    frame: Uint8Array,
    metadata: Record<string, string> = {},
    contentType = 'image/png',
    options: { readonly thumbnail?: boolean } = {},
  ): Promise<{ sha256: string; size: number }> {
    const sha256 = createHash('sha256').update(frame).digest('hex');
    await Promise.all([
      this.put(key, frame, contentType, { ...metadata, sha256 }),
      // The review page's thumbnail is made of the PNG; an EXR deliverable has none yet.
      this.thumbnailer &&
        options.thumbnail !== false &&
        contentType === 'image/png' &&
        this.putThumbnail(key, frame),
    ]);
    return { sha256, size: frame.byteLength };
  }

  private async putThumbnail(key: string, png: Uint8Array): Promise<void> {
    const small = await this.thumbnailer!(png);
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: thumbnailKey(key),
        Body: small,
        ContentType: 'image/webp',
      }),
    );
  }

  /**
   * Copies an object within the bucket (S3 CopyObject: the bytes never leave S3); with `ifMissing`, only
   * when nothing is at `to` yet. Returns false when the source does not exist.
   */
  async copy(from: string, to: string, options: { ifMissing?: boolean } = {}): Promise<boolean> {
    if (options.ifMissing && (await this.metadataOf(to)) !== undefined) return true;
    try {
      await this.s3.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: `${this.bucket}/${encodeURIComponent(from).replaceAll('%2F', '/')}`,
        }),
      );
      return true;
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return false;
      throw err;
    }
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await this.put(key, Buffer.from(JSON.stringify(value, null, 2)), 'application/json', {});
  }

  private async put(
    key: string,
    body: Uint8Array,
    contentType: string,
    metadata: Record<string, string>,
  ): Promise<void> {
    await new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, Metadata: metadata },
      queueSize: 4,
      partSize: 5 * 1024 * 1024,
    }).done();
  }

  /** Work files beside the frames (a window's raw versions of the frames it shares with a neighbour). */
  async putFile(
    key: string,
    body: Uint8Array,
    contentType: string,
    metadata: Record<string, string> = {},
  ): Promise<void> {
    await this.put(key, body, contentType, metadata);
  }

  /** An object's user metadata, or undefined when there is no object. */
  async metadataOf(key: string): Promise<Record<string, string> | undefined> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Metadata ?? {};
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404)
        return undefined;
      throw err;
    }
  }

  /** An object's bytes, or undefined when there is none. */
  async getFile(key: string): Promise<Uint8Array | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /**
   * Deletes the objects named, a thousand per request; a key with no object is no error. By key rather
   * than by prefix, so the worker needs no right to list the bucket.
   */
  async deleteAll(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const objects = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      const out = await this.s3.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: objects, Quiet: true } }),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        throw new Error(
          `S3 kept ${failed.length} object(s): ${failed[0]?.Code ?? 'unknown'} on ${failed[0]?.Key}`,
        );
      }
    }
  }

  /** A GET URL for one object, expiring after `expiresIn` seconds, never later than the configured bound. */
  async presignGet(
    key: string,
    expiresIn = this.maxUrlExpirySeconds,
  ): Promise<{ url: string; expiresAt: Date }> {
    const seconds = Math.max(1, Math.min(expiresIn, this.maxUrlExpirySeconds));
    const fileName = key.slice(key.lastIndexOf('/') + 1);
    const url = await getSignedUrl(
      this.s3,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentDisposition: `attachment; filename="${fileName}"`,
      }),
      { expiresIn: seconds },
    );
    return { url, expiresAt: new Date(Date.now() + seconds * 1000) };
  }
}
