import { join } from 'node:path';
import { Duration, Stage, Validations } from 'aws-cdk-lib';
import { type HttpApi, HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Construct } from 'constructs';
import { ENV } from '../functions/shared/env.ts';
import { PAGE_ROUTES } from '../functions/shared/routes.ts';
import { writeReviewPage } from '../review/build.ts';
import { FramecastFunction, handlerId, type LogSettings } from './lambda.ts';

export interface ReviewPageProps {
  /** The API the page is served beside: `GET /` and `GET /review/{file}` are added to it. */
  readonly httpApi: HttpApi;
  /** Settings every process reads (the production's name for its logs); the page adds its CSP sources. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logs: LogSettings;
  /**
   * CSP sources the page may call and load images from besides its own origin: the API if it moves to
   * another origin, and the presigned S3 URLs of frames.
   * @default 'https:'
   */
  readonly sources?: string;
}

/**
 * The review page on the API's own origin: a function serving the page's static files, built at synth
 * time (review/build.ts) and shipped in its asset. Its routes are public: the page holds no data and
 * reads none; each API call it makes carries the API key the user pastes into it. The function may
 * write its logs and nothing else.
 */
export class ReviewPage extends Construct {
  readonly function: FramecastFunction;

  constructor(scope: Construct, id: string, props: ReviewPageProps) {
    super(scope, id);
    const [root] = PAGE_ROUTES;
    if (!root || PAGE_ROUTES.some((r) => r.entry !== root.entry))
      throw new Error('the review page routes must share one handler');

    // Built into the cloud assembly's folder, beside the assets it stages, so a synthesis leaves no temp files.
    const outdir = Stage.of(this)?.outdir ?? '.';
    const pageDir = writeReviewPage(join(outdir, `.review-page-${this.node.addr}`));

    this.function = new FramecastFunction(this, handlerId(root.entry), {
      entry: root.entry,
      description: 'Framecast review page: GET / and GET /review/{file}',
      timeout: Duration.seconds(5),
      memorySize: 256,
      environment: { ...props.environment, [ENV.reviewSources]: props.sources ?? 'https:' },
      logs: props.logs,
      files: { from: pageDir, dir: 'page' },
    });
    const integration = new HttpLambdaIntegration('ReviewPageIntegration', this.function.function);
    for (const route of PAGE_ROUTES) {
      const [apiRoute] = props.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration,
      });
      if (apiRoute)
        Validations.of(apiRoute).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            'The review page is public static files: it holds and reads no data; every API call it makes carries the API key the user pastes into it.',
        });
    }
  }
}
