/**
 * s3rver or the SQS emulator in a Node process of its own (local/emulators.ts, `ownProcess`), driven over
 * the IPC channel of its parent: asked to start one, it answers the endpoint; then it pauses or stops it
 * when asked, and stops it and leaves when the parent goes.
 */
import {
  type EmulatorChildReply,
  type EmulatorChildRequest,
  type RunningEmulator,
  startS3,
  startSqs,
} from './emulators.ts';

let emulator: RunningEmulator | undefined;
const reply = (message: EmulatorChildReply) => process.send?.(message);

const leave = async () => {
  await emulator?.stop().catch(() => undefined);
  process.exit(0);
};

process.on('message', (request: EmulatorChildRequest) => {
  void (async () => {
    try {
      if ('start' in request) {
        emulator = request.start === 's3' ? await startS3(request.directory) : await startSqs();
        reply({ endpoint: emulator.endpoint });
      } else if ('pause' in request) {
        await emulator?.pause?.(request.pause);
        reply({ done: true });
      } else {
        reply({ done: true });
        await leave();
      }
    } catch (error) {
      reply({ error: error instanceof Error ? error.message : String(error) });
    }
  })();
});
process.on('disconnect', () => void leave());
