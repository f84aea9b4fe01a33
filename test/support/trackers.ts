import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the three trackers' REST APIs, strict about what each documents: ShotGrid's REST
 * API v1 (client-credentials sign-in, form-encoded; `_search` with array filters; entity creation as JSON
 * with a Bearer token), ftrack's one `/api` endpoint (ftrack-user and ftrack-api-key headers, a JSON list
 * of query and create operations whose ids refer to each other) and Kitsu's Zou API (JSON login, shots by
 * filter, output files of an entity). A request that strays from that shape answers 400 with the reason,
 * and what was published is kept for the test to read.
 */

export const SHOT = 'EP101_SH040';
export const CREDENTIALS = {
  shotgrid: { scriptName: 'framecast', scriptKey: 'sg-key' },
  ftrack: { user: 'framecast@studio', apiKey: 'ft-key' },
  kitsu: { email: 'framecast@studio', password: 'kitsu-pass' },
} as const;
export const IDS = {
  shotgridProject: 70,
  ftrackProject: 'ftp-1',
  ftrackAssetType: 'render-type',
  ftrackLocation: 'unmanaged-location',
  kitsuProject: 'kp-1',
  kitsuOutputType: 'ot-1',
  kitsuTaskType: 'tt-1',
} as const;

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const need = (ok: unknown, message: string, status = 400): void => {
  if (!ok) throw new Refused(status, message);
};
const SEQUENCE = /%0\d+d/;

export interface Published {
  shotgrid: { versions: Record<string, unknown>[]; publishedFiles: Record<string, unknown>[] };
  ftrack: { creates: { entity_type: string; entity_data: Record<string, unknown> }[] };
  kitsu: { outputFiles: (Record<string, unknown> & { entity: string })[] };
}

export async function startTrackers(options: { failFirst?: Partial<Record<string, number>> } = {}) {
  const published: Published = {
    shotgrid: { versions: [], publishedFiles: [] },
    ftrack: { creates: [] },
    kitsu: { outputFiles: [] },
  };
  const refusals: string[] = [];
  const tokens = new Set<string>();
  const failures = new Map(Object.entries(options.failFirst ?? {}));
  const ftrackAssets = new Set<string>();
  const ftrackVersions = new Set<string>();
  const ftrackComponents = new Set<string>();
  let nextId = 100;

  const bearer = (req: IncomingMessage) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    need(token && tokens.has(token), 'a valid Bearer access token is required', 401);
  };
  const contentType = (req: IncomingMessage, type: string) =>
    need((req.headers['content-type'] ?? '').split(';')[0] === type, `Content-Type must be ${type}`, 415);
  const jsonOf = (body: string): unknown => {
    try {
      return JSON.parse(body);
    } catch {
      throw new Refused(400, 'the body is not JSON');
    }
  };

  function shotgrid(req: IncomingMessage, url: URL, body: string): unknown {
    if (url.pathname === '/api/v1/auth/access_token') {
      contentType(req, 'application/x-www-form-urlencoded');
      const form = new URLSearchParams(body);
      need(form.get('grant_type') === 'client_credentials', 'grant_type must be client_credentials');
      need(
        form.get('client_id') === CREDENTIALS.shotgrid.scriptName &&
          form.get('client_secret') === CREDENTIALS.shotgrid.scriptKey,
        'unknown script or key',
        401,
      );
      const token = randomUUID();
      tokens.add(token);
      return { token_type: 'Bearer', access_token: token, expires_in: 600, refresh_token: randomUUID() };
    }
    bearer(req);
    if (url.pathname === '/api/v1/entity/shots/_search') {
      contentType(req, 'application/vnd+shotgun.api3_array+json');
      const q = jsonOf(body) as { filters?: unknown[]; fields?: unknown };
      need(
        Array.isArray(q.filters) && q.filters.every((f) => Array.isArray(f) && f.length === 3),
        'filters must be [field, relation, value] triples',
      );
      need(Array.isArray(q.fields), 'fields must be a list');
      const filters = q.filters as [string, string, unknown][];
      const project = filters.find(([f]) => f === 'project');
      need(
        JSON.stringify(project?.[2]) === JSON.stringify({ type: 'Project', id: IDS.shotgridProject }),
        'filter on the project, as an entity link',
      );
      const code = filters.find(([f, r]) => f === 'code' && r === 'is')?.[2];
      return { data: code === SHOT ? [{ type: 'Shot', id: 1234, attributes: { code }, links: {} }] : [] };
    }
    contentType(req, 'application/json');
    const data = jsonOf(body) as Record<string, unknown>;
    need(
      JSON.stringify(data.project) === JSON.stringify({ type: 'Project', id: IDS.shotgridProject }),
      'project must be the project link',
    );
    need(
      JSON.stringify(data.entity) === JSON.stringify({ type: 'Shot', id: 1234 }),
      'entity must link the Shot',
    );
    if (url.pathname === '/api/v1/entity/versions') {
      need(typeof data.code === 'string' && data.code !== '', 'code (the Version name) is required');
      need(
        typeof data.sg_path_to_frames === 'string' && SEQUENCE.test(data.sg_path_to_frames),
        'sg_path_to_frames must be the sequence with its %04d pattern',
      );
      need(
        Number.isInteger(data.sg_first_frame) && Number.isInteger(data.sg_last_frame),
        'sg_first_frame and sg_last_frame must be frame numbers',
      );
      const id = nextId++;
      published.shotgrid.versions.push({ id, ...data });
      return { data: { type: 'Version', id, attributes: data, links: {} } };
    }
    if (url.pathname === '/api/v1/entity/published_files') {
      const version = data.version as { type?: string; id?: number } | undefined;
      need(
        version?.type === 'Version' && published.shotgrid.versions.some((v) => v.id === version.id),
        'version must link a created Version',
      );
      const path = data.path as { url?: string } | undefined;
      need(
        typeof path?.url === 'string' && SEQUENCE.test(path.url),
        'path must be a link to the sequence with its %04d pattern',
      );
      need(typeof data.code === 'string' && SEQUENCE.test(data.code), 'code must be the file pattern');
      const id = nextId++;
      published.shotgrid.publishedFiles.push({ id, ...data });
      return { data: { type: 'PublishedFile', id, attributes: data, links: {} } };
    }
    throw new Refused(404, `no route ${url.pathname}`);
  }

  function ftrack(req: IncomingMessage, body: string): unknown {
    need(
      req.headers['ftrack-user'] === CREDENTIALS.ftrack.user &&
        req.headers['ftrack-api-key'] === CREDENTIALS.ftrack.apiKey,
      'ftrack-user and ftrack-api-key must name a user and its key',
      401,
    );
    contentType(req, 'application/json');
    need(req.headers.accept === 'application/json', 'Accept must be application/json');
    const ops = jsonOf(body);
    need(Array.isArray(ops) && ops.length > 0, 'the body must be a list of operations');
    // A batch is checked whole before anything is created, as ftrack runs it in one transaction.
    const created = {
      assets: new Set(ftrackAssets),
      versions: new Set(ftrackVersions),
      components: new Set(ftrackComponents),
    };
    const answers = (ops as Record<string, unknown>[]).map((op) => {
      if (op.action === 'query') {
        need(
          typeof op.expression === 'string' && /^select .+ from \w+( where .+)?$/.test(op.expression),
          'a query is "select <attributes> from <type> where ..."',
        );
        const expression = op.expression as string;
        if (/from Shot /.test(expression)) {
          need(expression.includes(`project_id is "${IDS.ftrackProject}"`), 'query the shot in the project');
          return {
            action: 'query',
            data: expression.includes(`name is "${SHOT}"`) ? [{ __entity_type__: 'Shot', id: 'shot-1' }] : [],
            metadata: { next: { offset: null } },
          };
        }
        if (/from Asset /.test(expression)) {
          const names = [...ftrackAssets];
          return {
            action: 'query',
            data: names.length > 0 ? [{ __entity_type__: 'Asset', id: names[0] }] : [],
            metadata: { next: { offset: null } },
          };
        }
        throw new Refused(400, `unexpected query ${expression}`);
      }
      need(op.action === 'create', `unknown action ${String(op.action)}`);
      const data = op.entity_data as Record<string, unknown>;
      need(
        (typeof data === 'object' && data !== null && typeof data.id === 'string') ||
          op.entity_type === 'ComponentLocation',
        'entity_data must give the new entity its id',
      );
      switch (op.entity_type) {
        case 'Asset':
          need(
            data.context_id === 'shot-1' && data.type_id === IDS.ftrackAssetType,
            'an Asset needs the shot as context_id and its type_id',
          );
          created.assets.add(data.id as string);
          break;
        case 'AssetVersion':
          need(created.assets.has(data.asset_id as string), 'asset_id must name an Asset');
          created.versions.add(data.id as string);
          break;
        case 'SequenceComponent':
          need(created.versions.has(data.version_id as string), 'version_id must name an AssetVersion');
          need(
            Number.isInteger(data.padding) &&
              typeof data.file_type === 'string' &&
              String(data.file_type).startsWith('.'),
            'a SequenceComponent needs padding and file_type',
          );
          created.components.add(data.id as string);
          break;
        case 'ComponentLocation':
          need(created.components.has(data.component_id as string), 'component_id must name a component');
          need(data.location_id === IDS.ftrackLocation, 'location_id must name the location');
          need(
            typeof data.resource_identifier === 'string' &&
              SEQUENCE.test(data.resource_identifier) &&
              /\[\d+-\d+\]$/.test(data.resource_identifier),
            'resource_identifier must be the pattern with its [first-last] range',
          );
          break;
        default:
          throw new Refused(400, `unknown entity type ${String(op.entity_type)}`);
      }
      return { action: 'create', data: { __entity_type__: op.entity_type, ...data } };
    });
    for (const op of ops as { action: string; entity_type: string; entity_data: Record<string, unknown> }[]) {
      if (op.action === 'create')
        published.ftrack.creates.push({ entity_type: op.entity_type, entity_data: op.entity_data });
    }
    for (const a of created.assets) ftrackAssets.add(a);
    for (const v of created.versions) ftrackVersions.add(v);
    for (const c of created.components) ftrackComponents.add(c);
    return answers;
  }

  function kitsu(req: IncomingMessage, url: URL, body: string): unknown {
    if (url.pathname === '/api/auth/login') {
      contentType(req, 'application/json');
      const c = jsonOf(body) as Record<string, unknown>;
      need(
        c.email === CREDENTIALS.kitsu.email && c.password === CREDENTIALS.kitsu.password,
        'wrong email or password',
        401,
      );
      const token = randomUUID();
      tokens.add(token);
      return { login: true, access_token: token, refresh_token: randomUUID(), user: { email: c.email } };
    }
    bearer(req);
    if (req.method === 'GET' && url.pathname === '/api/data/shots') {
      need(url.searchParams.get('project_id') === IDS.kitsuProject, 'filter shots by project_id');
      const name = url.searchParams.get('name');
      return name === SHOT ? [{ id: 'kshot-1', name, project_id: IDS.kitsuProject, type: 'Shot' }] : [];
    }
    const m = /^\/api\/data\/entities\/([^/]+)\/output-files\/new$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      contentType(req, 'application/json');
      need(m[1] === 'kshot-1', 'the entity must be the shot');
      const data = jsonOf(body) as Record<string, unknown>;
      need(
        data.output_type_id === IDS.kitsuOutputType && data.task_type_id === IDS.kitsuTaskType,
        'output_type_id and task_type_id are required',
      );
      need(
        Number.isInteger(data.revision) && Number.isInteger(data.nb_elements),
        'revision and nb_elements must be integers',
      );
      need(
        typeof data.comment === 'string' && SEQUENCE.test(data.comment),
        'the comment carries the sequence path',
      );
      published.kitsu.outputFiles.push({ entity: m[1]!, ...data });
      return { id: randomUUID(), ...data };
    }
    throw new Refused(404, `no route ${url.pathname}`);
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const [, tracker] = url.pathname.split('/');
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const left = failures.get(tracker ?? '') ?? 0;
      if (left > 0) {
        failures.set(tracker!, left - 1);
        return answer(503, { error: 'try again' });
      }
      const rest = new URL(url.pathname.slice(tracker!.length + 1) + url.search, 'http://stand-in');
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        if (tracker === 'shotgrid') return answer(200, shotgrid(req, rest, body));
        if (tracker === 'ftrack' && rest.pathname === '/api' && req.method === 'POST')
          return answer(200, ftrack(req, body));
        if (tracker === 'kitsu') return answer(200, kitsu(req, rest, body));
        throw new Refused(404, 'no such tracker');
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        refusals.push(`${tracker} ${rest.pathname}: ${err.message}`);
        answer(err.status, { errors: [{ status: err.status, title: err.message }] });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    /** Each tracker's site: `<base>/shotgrid`, `<base>/ftrack`, `<base>/kitsu`. */
    url: (tracker: 'shotgrid' | 'ftrack' | 'kitsu') => `${base}/${tracker}`,
    published,
    refusals,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The publisher settings of the three trackers at the stand-in. */
export const publisherConfigs = (url: (t: 'shotgrid' | 'ftrack' | 'kitsu') => string) => [
  {
    tracker: 'shotgrid' as const,
    url: url('shotgrid'),
    secret: 'shotgrid',
    events: ['job.succeeded' as const],
    projectId: IDS.shotgridProject,
  },
  {
    tracker: 'ftrack' as const,
    url: url('ftrack'),
    secret: 'ftrack',
    events: ['job.succeeded' as const],
    projectId: IDS.ftrackProject,
    assetTypeId: IDS.ftrackAssetType,
    locationId: IDS.ftrackLocation,
  },
  {
    tracker: 'kitsu' as const,
    url: url('kitsu'),
    secret: 'kitsu',
    events: ['job.succeeded' as const],
    projectId: IDS.kitsuProject,
    outputTypeId: IDS.kitsuOutputType,
    taskTypeId: IDS.kitsuTaskType,
  },
];
