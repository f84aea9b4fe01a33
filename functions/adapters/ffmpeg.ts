/**
 * The ffmpeg to run: FRAMECAST_FFMPEG when set (the container image installs Debian's ffmpeg there), else
 * the one that comes with `@ffmpeg-installer/ffmpeg`, so `npm ci` alone is enough on a developer's machine.
 * The reference model encodes window videos with it, and the worker decodes the videos models answer.
 */
export async function ffmpegPath(): Promise<string> {
  if (process.env.FRAMECAST_FFMPEG) return process.env.FRAMECAST_FFMPEG;
  try {
    return (await import('@ffmpeg-installer/ffmpeg')).default.path;
  } catch (err) {
    // The package throws a string when it finds no binary for this platform.
    throw new Error(`ffmpeg is not available: ${err instanceof Error ? err.message : String(err)}`);
  }
}
