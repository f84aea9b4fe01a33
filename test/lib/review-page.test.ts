import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { PAGE_ROUTES } from '../../functions/shared/routes.ts';
import { ReviewPage } from '../../lib/review-page.ts';
import { actionsOf, cliLikeApp, functionStatements, resourcesOf, templateOf } from './synth.ts';

type Served = { statusCode: number; headers: Record<string, string>; body?: string };

describe('ReviewPage', () => {
  // Bundling on: the page is built at synth and must land in the function's asset.
  const app = cliLikeApp({ bundling: true });
  const stack = new Stack(app, 'Review');
  const httpApi = new HttpApi(stack, 'Api');
  new ReviewPage(stack, 'ReviewPage', {
    httpApi,
    environment: { [ENV.production]: 'demo' },
    logs: { retention: RetentionDays.ONE_DAY, removalPolicy: RemovalPolicy.DESTROY },
  });
  const template = templateOf(stack);
  const fnId = Object.keys(resourcesOf(template, 'AWS::Lambda::Function'))[0]!;

  it('adds GET / and GET /review/{file} to the API, public, on one function', () => {
    const routes = Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'));
    expect(routes.map((r) => r.Properties?.RouteKey).sort()).toEqual(
      PAGE_ROUTES.map((r) => `${r.method} ${r.path}`).sort(),
    );
    for (const r of routes) expect(r.Properties?.AuthorizationType ?? 'NONE').toBe('NONE');
    expect(Object.keys(resourcesOf(template, 'AWS::Lambda::Function'))).toHaveLength(1);
  });

  it('lets the function write its logs and nothing else', () => {
    expect(actionsOf(functionStatements(template, fnId)).sort()).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ]);
  });

  it('ships the built page in the asset, and the bundled handler serves it with its CSP', async () => {
    const asset = readdirSync(app.outdir)
      .map((d) => join(app.outdir, d))
      .find((d) => existsSync(join(d, 'index.mjs')));
    expect(asset).toBeDefined();
    expect(readdirSync(join(asset!, 'page')).sort()).toEqual([
      'app.js',
      'app.js.map',
      'index.html',
      'style.css',
    ]);

    const before = process.env[ENV.reviewPageDir];
    delete process.env[ENV.reviewPageDir];
    try {
      const { handler } = (await import(pathToFileURL(join(asset!, 'index.mjs')).href)) as {
        handler: (e: { rawPath: string; headers: Record<string, string> }) => Promise<Served>;
      };
      const page = await handler({ rawPath: '/', headers: {} });
      expect(page.statusCode).toBe(200);
      expect(Buffer.from(page.body!, 'base64').toString()).toContain('review/app.js');
      expect(page.headers['content-security-policy']).toContain("connect-src 'self' https:");
      const script = await handler({ rawPath: '/review/app.js', headers: {} });
      expect(script.statusCode).toBe(200);
      expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    } finally {
      if (before !== undefined) process.env[ENV.reviewPageDir] = before;
    }
  });
});
