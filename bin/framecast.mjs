#!/usr/bin/env node
// `framecast`, the command line (bin/framecast-cli.ts), run through tsx as the repository runs TypeScript.
// (bin/framecast.ts is the CDK app.)
import { register } from 'tsx/esm/api';

register();
await import('./framecast-cli.ts');
