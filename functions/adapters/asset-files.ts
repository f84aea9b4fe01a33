import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type AssetFileRecord, contentKey, sha256Base64, uploadHeaders } from '../core/assets.ts';

/** A content upload: a presigned PUT and the headers it must be sent with. */
export interface ContentUpload {
  readonly url: string;
  readonly headers: ReturnType<typeof uploadHeaders>;
  readonly expiresAt: Date;
}

type Content = Pick<AssetFileRecord, 'sha256' | 'size'>;

/**
 * Asset content in S3, one object per tenant and SHA-256 (`<tenant>/sha256/<hex>`, core/assets.ts), in the
 * production's asset bucket. Clients upload with presigned PUTs that sign the checksum and the length, so
 * S3 itself refuses bytes that are not the announced content (400 BadDigest) and a body of another size.
 */
export class AssetFiles {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
    /** Presigned URLs live this long at most (config: FRAMECAST_URL_EXPIRY_SECONDS). */
    private readonly maxUrlExpirySeconds = 3600,
  ) {}

  /**
   * A PUT URL for one content. `x-amz-checksum-sha256` and `content-length` are signed headers, kept out
   * of the query string (a header the presigner hoists into the query is not checked against the body),
   * so an upload must send both, and S3 compares the checksum with the bytes it receives. The S3 client
   * must calculate request checksums only WHEN_REQUIRED (adapters/clients.ts): otherwise the SDK signs the
   * checksum of an empty body into the URL and every real upload is refused.
   */
  /** A GET URL for one content: what the worker hands a model for an input file (Cog downloads it). */
  async presignGet(tenant: string, sha256: string, expiresIn = this.maxUrlExpirySeconds): Promise<string> {
    const seconds = Math.max(1, Math.min(expiresIn, this.maxUrlExpirySeconds));
    return getSignedUrl(
      this.s3,
      new GetObjectCommand({ Bucket: this.bucket, Key: contentKey(tenant, sha256) }),
      {
        expiresIn: seconds,
      },
    );
  }

  async presignPut(
    tenant: string,
    content: Content,
    expiresIn = this.maxUrlExpirySeconds,
  ): Promise<ContentUpload> {
    const seconds = Math.max(1, Math.min(expiresIn, this.maxUrlExpirySeconds));
    const headers = uploadHeaders(content);
    const url = await getSignedUrl(
      this.s3,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: contentKey(tenant, content.sha256),
        ChecksumSHA256: headers['x-amz-checksum-sha256'],
        ContentLength: content.size,
      }),
      {
        expiresIn: seconds,
        signableHeaders: new Set(['content-length', 'x-amz-checksum-sha256']),
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      },
    );
    return { url, headers, expiresAt: new Date(Date.now() + seconds * 1000) };
  }

  /**
   * True when the content is stored as announced: the object exists, has the size, and S3 holds its
   * SHA-256 checksum (given when it was uploaded through a Framecast URL) equal to the hash. An object
   * without that checksum did not come through an upload URL and is not trusted: it is uploaded again.
   */
  async holds(tenant: string, content: Content): Promise<boolean> {
    try {
      const head = await this.s3.send(
        new HeadObjectCommand({
          Bucket: this.bucket,
          Key: contentKey(tenant, content.sha256),
          ChecksumMode: 'ENABLED',
        }),
      );
      return head.ContentLength === content.size && head.ChecksumSHA256 === sha256Base64(content.sha256);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** The whole of one content: the worker reads input files it encodes into a video. */
  async get(tenant: string, sha256: string): Promise<Uint8Array> {
    const out = await this.s3.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: contentKey(tenant, sha256) }),
    );
    return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
  }

  /** `length` bytes of the content from `offset` (fewer at its end): a ranged GET. */
  async read(tenant: string, sha256: string, offset: number, length: number): Promise<Uint8Array> {
    const out = await this.s3.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: contentKey(tenant, sha256),
        Range: `bytes=${offset}-${offset + length - 1}`,
      }),
    );
    return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
  }

  /** Deletes contents, a thousand per request (S3's DeleteObjects); fails if S3 refuses any. */
  async deleteMany(tenant: string, sha256s: readonly string[]): Promise<void> {
    for (let i = 0; i < sha256s.length; i += 1000) {
      const out = await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: {
            Objects: sha256s.slice(i, i + 1000).map((sha) => ({ Key: contentKey(tenant, sha) })),
            Quiet: true,
          },
        }),
      );
      const refused = out.Errors ?? [];
      if (refused.length > 0)
        throw new Error(
          `S3 did not delete ${refused.length} objects, e.g. ${refused[0]?.Key}: ${refused[0]?.Code}`,
        );
    }
  }
}

/** HEAD answers a missing key with 404 NotFound (the role may list the bucket, so it is not a 403). */
const isNotFound = (err: unknown): boolean => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
};
