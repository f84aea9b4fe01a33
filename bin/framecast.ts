import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError, loadProductionConfig } from '../lib/config.ts';
import { FramecastStack, stackName } from '../lib/framecast-stack.ts';
import { PROJECT_ROOT } from '../lib/lambda.ts';

/**
 * The CDK app: `npx cdk synth|deploy|destroy -c production=<name>` builds the stack of one production
 * from config/<name>.json (defaults when the file is absent). Env-agnostic: it synthesizes offline and
 * deploys to whatever account and region the credentials point at.
 */
const app = new App();
try {
  const config = loadProductionConfig(app.node.tryGetContext('production'), join(PROJECT_ROOT, 'config'));
  new FramecastStack(app, stackName(config.production), { config });
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`framecast: ${err.message}`);
  process.exit(1);
}
// An unacknowledged AwsSolutions finding fails the synth; each acknowledgement carries its reason.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
