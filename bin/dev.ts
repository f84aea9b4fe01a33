import { resolve } from 'node:path';
import { startLocalStack } from '../local/stack.ts';

/**
 * `npm run dev`: the whole system on this machine, data kept under .framecast/ between runs.
 * PORT (default 4000), FRAMECAST_DEV_API_KEY and FRAMECAST_MODEL_URL are read from the environment.
 */
const port = Number(process.env.PORT ?? 4000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not "${process.env.PORT}"`);
  process.exit(2);
}

let stack: Awaited<ReturnType<typeof startLocalStack>>;
try {
  stack = await startLocalStack({
    dataDir: resolve('.framecast'),
    // Where `framecast keys` finds this stack's table (bin/cli/keys.ts).
    connectionFile: resolve('.framecast', 'local.json'),
    port,
    ...(process.env.FRAMECAST_DEV_API_KEY && { devApiKey: process.env.FRAMECAST_DEV_API_KEY }),
    ...(process.env.FRAMECAST_MODEL_URL && { modelUrl: process.env.FRAMECAST_MODEL_URL }),
  });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  console.error(
    e.code === 'EADDRINUSE'
      ? `framecast: port ${port} is in use; stop what holds it or choose another with PORT=<port> npm run dev`
      : `framecast: local mode could not start: ${e.message}`,
  );
  process.exit(1);
}

console.log(`
Framecast local mode is running.

  API        ${stack.url}
  API key    ${stack.apiKey}   (tenant "dev", every scope)
  model      ${stack.modelUrl}${process.env.FRAMECAST_MODEL_URL ? '' : '  (the reference model: procedural CPU frames, not a generative model)'}
  data       .framecast/

Try:
  export FC=${stack.url} KEY=${stack.apiKey}
  curl -s -X POST $FC/v1/jobs -H "authorization: Bearer $KEY" -H 'content-type: application/json' \\
    -d '{"shot":"EP101_SH040","prompt":"a building collapses in slow motion, dust, dusk","frames":{"start":1001,"end":1024},"seed":42}'

Or with the CLI (README, "The CLI"):
  export FRAMECAST_API_URL=${stack.url} FRAMECAST_API_KEY=${stack.apiKey}
  npx framecast submit --shot EP101_SH040 --prompt "a building collapses in slow motion" --frames 1001-1024 --seed 42 --wait
  npx framecast keys create --tenant comp --scopes jobs:read,jobs:write    # from this folder: .framecast/local.json

Ctrl-C stops it.
`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    stack.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
}
