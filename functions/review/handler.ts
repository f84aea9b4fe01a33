import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { fromConfig } from '../config.ts';
import { servePage } from './serve.ts';

/**
 * `GET /` and `GET /review/{file}`: the review page. Its files are built at synth time (review/build.ts)
 * and shipped in this function's asset, in `page/` beside the bundle; local mode builds them into a folder
 * of its own and names it in FRAMECAST_REVIEW_PAGE_DIR. They are read once, at cold start (again only
 * when the settings change, as between two local stacks in one process).
 */
const page = fromConfig(['reviewPageDir', 'reviewSources'], (config) => {
  const dir = config.reviewPageDir ?? fileURLToPath(new URL('./page/', import.meta.url));
  const files = new Map(
    readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => [e.name, new Uint8Array(readFileSync(join(dir, e.name)))] as const),
  );
  return servePage(files, { sources: config.reviewSources });
});
page();

export const handler = async (event: APIGatewayProxyEventV2) => page()(event);
