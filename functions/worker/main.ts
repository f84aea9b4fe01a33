import { loadConfig } from '../config.ts';
import { logger } from '../logger.ts';
import { Container } from '../services/container.ts';
import { createWorker } from './create.ts';

/**
 * The GPU container's process. ECS sends SIGTERM on scale-in and Spot interruption and waits the task's
 * stop timeout: the worker stops polling, hands unstarted chunks back and finishes the frames in hand.
 */
const worker = createWorker(new Container());
const { modelName, modelUrl } = loadConfig(['modelName', 'modelUrl']);
logger.info('worker starting', { model: modelName, modelUrl });

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info('stopping: handing unstarted chunks back', { signal });
    worker.stop();
  });
}

try {
  await worker.run();
  logger.info('worker stopped', { ...worker.stats });
  process.exit(0);
} catch (err) {
  logger.error('worker failed', { error: err as Error });
  process.exit(1);
}
