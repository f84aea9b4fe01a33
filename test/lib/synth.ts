import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnResource, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll } from 'vitest';
import { type ProductionConfig, parseConfig } from '../../lib/config.ts';
import { FramecastStack, stackName } from '../../lib/framecast-stack.ts';
import { PROJECT_ROOT } from '../../lib/lambda.ts';

/** The feature flags of cdk.json: `new App()` ignores the file, and the CLI synthesizes with them. */
export const CDK_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8'),
).context;

export interface Synthesized {
  readonly app: App;
  readonly stack: FramecastStack;
  readonly template: Template;
  readonly config: ProductionConfig;
}

// Each synthesis stages assets (the Docker build context at least): a test file leaves none behind.
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** An App configured as the CLI configures it (cdk.json's context), writing to a temporary directory. */
export function cliLikeApp(options: { bundling?: boolean } = {}): App {
  const outdir = mkdtempSync(join(tmpdir(), 'framecast-cdk-'));
  outdirs.push(outdir);
  return new App({
    outdir,
    context: { ...CDK_CONTEXT, ...(options.bundling ? {} : { 'aws:cdk:bundling-stacks': [] }) },
  });
}

/** Adds one production's stack to an app, from the content of its config file. */
export function addProduction(
  app: App,
  production: string,
  configFile: unknown = {},
): { stack: FramecastStack; config: ProductionConfig } {
  const config = parseConfig(production, configFile);
  return { stack: new FramecastStack(app, stackName(production), { config }), config };
}

/**
 * One production's stack, synthesized as the CLI would. Bundling is skipped unless asked for: esbuild
 * runs once, in the one test that checks the bundle.
 */
export function synthesize(
  production: string,
  configFile: unknown = {},
  options: { bundling?: boolean } = {},
): Synthesized {
  const app = cliLikeApp(options);
  const { stack, config } = addProduction(app, production, configFile);
  return { app, stack, template: withoutCfnValidation(() => Template.fromStack(stack)), config };
}

/** A construct's template, on a bare stack of its own (as the construct tests build them), synthesized quickly. */
export function templateOf(stack: Stack): Template {
  return withoutCfnValidation(() => Template.fromStack(stack));
}

/**
 * Runs a synthesis without aws-cdk-lib's built-in CloudFormation validation, about a second and a half of
 * each synthesis. It changes no template; productions.test.ts keeps it on, as `cdk synth` does.
 */
export function withoutCfnValidation<T>(synth: () => T): T {
  const before = process.env.CDK_VALIDATION;
  process.env.CDK_VALIDATION = 'false';
  try {
    return synth();
  } finally {
    if (before === undefined) delete process.env.CDK_VALIDATION;
    else process.env.CDK_VALIDATION = before;
  }
}

export type CfnTemplate = {
  Resources: Record<
    string,
    {
      Type: string;
      Properties?: Record<string, unknown>;
      DeletionPolicy?: string;
      UpdateReplacePolicy?: string;
      DependsOn?: string[];
    }
  >;
};
export type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

type Resource = CfnTemplate['Resources'][string];

/** A resource's properties: a missing resource fails here, not as a TypeError further on. */
export function propsOf(resource: Resource | undefined): Record<string, unknown> {
  if (!resource?.Properties) throw new Error('no such resource, or a resource without properties');
  return resource.Properties;
}

/** The resources of one type, by logical id. */
export function resourcesOf(
  template: Template,
  type: string,
): Record<string, NonNullable<CfnTemplate['Resources'][string]>> {
  const all = (template.toJSON() as CfnTemplate).Resources;
  return Object.fromEntries(Object.entries(all).filter(([, r]) => r.Type === type));
}

/** The logical id of the Lambda with this description (the constructs describe each function). */
export function functionId(template: Template, description: string): string {
  const found = Object.entries(resourcesOf(template, 'AWS::Lambda::Function')).filter(
    ([, r]) => r.Properties?.Description === description,
  );
  if (found.length !== 1)
    throw new Error(`expected one function described ${JSON.stringify(description)}, found ${found.length}`);
  return found[0]![0];
}

/** Every statement of the policies attached to a role. */
export function roleStatements(template: Template, roleId: string): Statement[] {
  return Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) =>
      (propsOf(p).Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId })),
    )
    .flatMap((p) => (propsOf(p).PolicyDocument as { Statement: Statement[] }).Statement);
}

/** Every statement a function's role may use. */
export function functionStatements(template: Template, fnId: string): Statement[] {
  const role = resourcesOf(template, 'AWS::Lambda::Function')[fnId]?.Properties?.Role as {
    'Fn::GetAtt': [string, string];
  };
  return roleStatements(template, role['Fn::GetAtt'][0]);
}

export const actionsOf = (statements: readonly Statement[]): string[] =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

/** Whether a statement names a resource (its logical id appears in the Resource). */
export const mentions = (statement: Statement, logicalId: string): boolean =>
  JSON.stringify(statement.Resource).includes(`"${logicalId}"`);

/** The logical id of the one resource of a type under a construct path. */
export function idAt(stack: Stack, path: string): string {
  const node = stack.node.findAll().find((c) => c.node.path === `${stack.stackName}/${path}`);
  if (!node) throw new Error(`no construct at ${path}`);
  const cfn = [node, node.node.defaultChild, ...node.node.children].find(
    (c) => c && CfnResource.isCfnResource(c),
  ) as CfnResource | undefined;
  if (!cfn) throw new Error(`no CloudFormation resource at ${path}`);
  return stack.resolve(cfn.logicalId) as string;
}
