import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the CLI connects: `--api-url`/`--api-key`, else FRAMECAST_API_URL/FRAMECAST_API_KEY, else the
 * profile file `$XDG_CONFIG_HOME/framecast/config.json` (default `~/.config/framecast/config.json`):
 * `{"apiUrl": "...", "apiKey": "fc_..."}`, or named profiles `{"profiles": {"ep101": {...}}, "default": "ep101"}`
 * chosen with `--profile` or FRAMECAST_PROFILE.
 */
export interface Connection {
  readonly apiUrl: string;
  readonly apiKey: string;
}

interface ProfileEntry {
  apiUrl?: string;
  apiKey?: string;
}
interface ProfileFile extends ProfileEntry {
  profiles?: Record<string, ProfileEntry>;
  default?: string;
}

export const configPath = (env: NodeJS.ProcessEnv = process.env) =>
  join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'framecast', 'config.json');

export async function resolveConnection(
  flags: { apiUrl?: string; apiKey?: string; profile?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  let file: ProfileFile = {};
  const path = configPath(env);
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as ProfileFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`${path}: ${(err as Error).message}`);
  }
  const profileName = flags.profile ?? env.FRAMECAST_PROFILE ?? file.default;
  const profile: ProfileEntry = profileName ? (file.profiles?.[profileName] ?? {}) : file;
  if (profileName && !file.profiles?.[profileName] && (flags.profile || env.FRAMECAST_PROFILE))
    throw new Error(`no profile "${profileName}" in ${path}`);
  const apiUrl = flags.apiUrl ?? env.FRAMECAST_API_URL ?? profile.apiUrl;
  const apiKey = flags.apiKey ?? env.FRAMECAST_API_KEY ?? profile.apiKey;
  if (!apiUrl) throw new Error(`no API URL: give --api-url, set FRAMECAST_API_URL or write ${path}`);
  if (!apiKey) throw new Error(`no API key: give --api-key, set FRAMECAST_API_KEY or write ${path}`);
  return { apiUrl, apiKey };
}
