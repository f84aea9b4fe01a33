import { parseArgs } from 'node:util';
import { hashApiKey } from '../functions/core/api-keys.ts';
import { SCOPES, type Scope } from '../functions/core/model.ts';
import { createApiKey } from '../functions/services/api-keys.ts';
import { Container } from '../functions/services/container.ts';

/**
 * Operator commands against a stack's table (FRAMECAST_TABLE, AWS credentials from the environment):
 *
 *   npx tsx bin/admin.ts create-key --tenant acme [--scopes jobs:read,jobs:write] [--name "comp team"]
 *   npx tsx bin/admin.ts revoke-key --key fc_...
 */
const usage = `usage:
  admin create-key --tenant <tenant> [--scopes ${SCOPES.join(',')}] [--name <label>]
  admin revoke-key --key <fc_...>`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    tenant: { type: 'string' },
    scopes: { type: 'string' },
    name: { type: 'string' },
    key: { type: 'string' },
  },
});

const app = new Container();
try {
  switch (positionals[0]) {
    case 'create-key': {
      if (!values.tenant) throw new Error('--tenant is required');
      const scopes = (values.scopes ?? SCOPES.join(',')).split(',').map((s) => s.trim());
      const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0)
        throw new Error(`--scopes: unknown scope ${unknown.join(', ')}; known: ${SCOPES.join(', ')}`);
      const key = await createApiKey(app.apiKeys, {
        tenant: values.tenant,
        scopes: scopes as Scope[],
        name: values.name ?? `created ${new Date().toISOString()}`,
      });
      console.log(key);
      console.error(
        `API key for tenant "${values.tenant}" with ${scopes.join(', ')}. It is shown once; only its hash is stored.`,
      );
      break;
    }
    case 'revoke-key': {
      if (!values.key) throw new Error('--key is required');
      await app.apiKeys.revokeApiKey(hashApiKey(values.key));
      console.error('revoked; API processes stop accepting it within 60 s (their key cache)');
      break;
    }
    default:
      console.error(usage);
      process.exit(2);
  }
} catch (err) {
  console.error(`admin: ${(err as Error).message}`);
  process.exit(1);
}
