import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { FrameStore } from '../../../functions/adapters/frame-store.ts';

// Presigning is local computation: a client pointed at real S3 shows the URL AWS would get.
const s3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

describe('presigned frame URLs', () => {
  const store = new FrameStore(s3, 'prod-frames', 900);

  it('never outlive the configured bound, whatever is asked', async () => {
    const { url, expiresAt } = await store.presignGet('acme/SH010/job_X/SH010.1001.png', 7 * 24 * 3600);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('900');
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(900_000);
    const shorter = await store.presignGet('acme/SH010/job_X/SH010.1001.png', 60);
    expect(new URL(shorter.url).searchParams.get('X-Amz-Expires')).toBe('60');
  });

  it('carry no checksum parameters, and name the file for download', async () => {
    const { url } = await store.presignGet('acme/SH010/job_X/SH010.1001.png');
    const params = [...new URL(url).searchParams.keys()].map((k) => k.toLowerCase());
    expect(params.some((k) => k.includes('checksum'))).toBe(false);
    expect(new URL(url).searchParams.get('response-content-disposition')).toBe(
      'attachment; filename="SH010.1001.png"',
    );
    expect(new URL(url).hostname).toBe('prod-frames.s3.eu-west-1.amazonaws.com');
  });
});
