import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../../functions/config.ts';
import { FramecastError } from '../../../../functions/core/errors.ts';
import {
  checkUrlSyntax,
  classifyAddress,
  type Lookup,
  policyFromSettings,
  requireDeliverableUrl,
  resolveAndCheck,
  type WebhookPolicy,
} from '../../../../functions/core/webhooks/ssrf.ts';

const PUBLIC_V4 = '93.184.215.14';
const PUBLIC_V6 = '2606:4700:4700::1111';
const strict: WebhookPolicy = { allowLoopback: false };
const local: WebhookPolicy = { allowLoopback: true };

/** A resolver that answers `addresses` for every name and records what it was asked. */
function answering(...addresses: string[]) {
  return vi.fn<Lookup>((_host, _options, callback) =>
    callback(
      null,
      addresses.map((address): LookupAddress => ({ address, family: isIP(address) })),
    ),
  );
}

const failing = (code: string) =>
  vi.fn<Lookup>((_host, _options, callback) => callback(Object.assign(new Error(code), { code }), []));

describe('hostile webhook URLs', () => {
  // Every name below resolves to a public address, so each refusal comes from the URL itself.
  const table: [url: string, reason: string][] = [
    ['http://vendor.example.com/hook', 'not https'],
    ['http://127.0.0.1:4000/hook', 'not https'],
    ['ftp://vendor.example.com/hook', 'not https'],
    ['file:///etc/passwd', 'not https'],
    ['javascript:alert(1)', 'not https'],
    ['https://user:pass@vendor.example.com/hook', 'credentials in URL'],
    ['https://token@vendor.example.com/hook', 'credentials in URL'],
    ['https://vendor.example.com:0/hook', 'invalid port'],
    ['not a url', 'not a valid URL'],
    [`https://${'a'.repeat(2100)}.example.com/`, 'URL too long'],
    ['https://127.0.0.1/hook', 'loopback address'],
    ['https://127.0.0.1./hook', 'loopback address'],
    ['https://127.255.255.254/', 'loopback address'],
    ['https://localhost/hook', 'loopback address'],
    ['https://LOCALHOST./hook', 'loopback address'],
    ['https://api.localhost/hook', 'loopback address'],
    ['https://2130706433/', 'loopback address'],
    ['https://0177.0.0.1/', 'loopback address'],
    ['https://0x7f000001/', 'loopback address'],
    ['https://0x7f.1/', 'loopback address'],
    ['https://127.1/', 'loopback address'],
    ['https://017700000001/', 'loopback address'],
    ['https://%31%32%37.0.0.1/', 'loopback address'],
    ['https://10.0.0.1/', 'private address'],
    ['https://10.255.255.255/', 'private address'],
    ['https://172.16.0.1/', 'private address'],
    ['https://172.31.255.254/', 'private address'],
    ['https://192.168.1.1/', 'private address'],
    ['https://0300.0250.0.1/', 'private address'],
    ['https://167772161/', 'private address'],
    ['https://100.64.0.1/', 'shared address'],
    ['https://100.127.255.254/', 'shared address'],
    ['https://169.254.169.254/latest/meta-data/', 'link-local address'],
    ['https://169.254.170.2/v2/credentials', 'link-local address'],
    ['https://0.0.0.0/', 'unspecified address'],
    ['https://0/', 'unspecified address'],
    ['https://224.0.0.1/', 'multicast address'],
    ['https://255.255.255.255/', 'broadcast address'],
    ['https://240.0.0.1/', 'reserved address'],
    ['https://192.0.2.1/', 'reserved address'],
    ['https://198.18.0.1/', 'reserved address'],
    ['https://[::1]/', 'loopback address'],
    ['https://[0:0:0:0:0:0:0:1]/', 'loopback address'],
    ['https://[::]/', 'unspecified address'],
    ['https://[fc00::1]/', 'unique-local address'],
    ['https://[fd12::1]/', 'unique-local address'],
    ['https://[fd00:ec2::254]/', 'unique-local address'],
    ['https://[fe80::1]/', 'link-local address'],
    ['https://[fec0::1]/', 'site-local address'],
    ['https://[ff02::1]/', 'multicast address'],
    ['https://[::ffff:127.0.0.1]/', 'loopback address'],
    ['https://[::ffff:7f00:1]/', 'loopback address'],
    ['https://[::ffff:169.254.169.254]/', 'link-local address'],
    ['https://[::ffff:0:a00:1]/', 'private address'],
    ['https://[64:ff9b::a9fe:a9fe]/', 'link-local address'],
    ['https://[64:ff9b::10.0.0.1]/', 'private address'],
    ['https://[2002:7f00:1::]/', 'loopback address'],
    ['https://[2002:a9fe:a9fe::1]/', 'link-local address'],
    ['https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', 'reserved address'],
    ['https://[::127.0.0.1]/', 'reserved address'],
    ['https://[64:ff9b:1::a00:1]/', 'reserved address'],
    ['https://[2001:db8::1]/', 'reserved address'],
    ['https://metadata/computeMetadata/v1/', 'host name not fully qualified'],
    ['https://metadata.google.internal/computeMetadata/v1/', 'internal host name'],
    ['https://ip-10-0-0-1.ec2.internal/', 'internal host name'],
    ['https://printer.local/', 'internal host name'],
    ['https://router.home.arpa/', 'internal host name'],
  ];

  it.each(table)('%s is refused: %s', async (url, reason) => {
    const lookup = answering(PUBLIC_V4);
    expect(await resolveAndCheck(url, strict, lookup)).toEqual({ ok: false, reason });
    // The refusal needs no DNS: registration answers at once, and no resolver learns the name.
    expect(lookup).not.toHaveBeenCalled();
    expect(checkUrlSyntax(url, strict)).toEqual({ ok: false, reason });
  });

  it('holds at least the thirty cases the policy promises', () => {
    expect(table.length).toBeGreaterThanOrEqual(30);
  });
});

describe('host names that resolve somewhere they must not', () => {
  const cases: [what: string, addresses: string[], reason: string][] = [
    ['a private address', ['10.1.2.3'], 'private address'],
    ['one public and one private address', [PUBLIC_V4, '192.168.0.10'], 'private address'],
    ['a private address listed after a public one, in IPv6', [PUBLIC_V6, 'fd00::1'], 'unique-local address'],
    ['the metadata service, IPv4-mapped', ['::ffff:169.254.169.254'], 'link-local address'],
    ['the metadata service', ['169.254.169.254'], 'link-local address'],
    ['loopback', ['127.0.0.1'], 'loopback address'],
    ['the shared address space', ['100.100.100.200'], 'shared address'],
    ['something that is not an address', ['not-an-ip'], 'invalid address'],
  ];

  it.each(cases)('a name resolving to %s is refused', async (_what, addresses, reason) => {
    const lookup = answering(...addresses);
    expect(await resolveAndCheck('https://hooks.rebind.example.com/x', strict, lookup)).toEqual({
      ok: false,
      reason,
    });
    expect(lookup).toHaveBeenCalledOnce();
    expect(lookup.mock.calls[0]?.[0]).toBe('hooks.rebind.example.com');
    expect(lookup.mock.calls[0]?.[1]).toMatchObject({ all: true });
  });

  it('refuses a name that does not resolve, or resolves to nothing', async () => {
    const url = 'https://nowhere.example.com/';
    expect(await resolveAndCheck(url, strict, failing('ENOTFOUND'))).toEqual({
      ok: false,
      reason: 'host name does not resolve',
    });
    expect(await resolveAndCheck(url, strict, answering())).toEqual({
      ok: false,
      reason: 'host name does not resolve',
    });
  });

  it('refuses a resolver that throws instead of calling back', async () => {
    const throwing: Lookup = () => {
      throw new Error('resolver broke');
    };
    expect(await resolveAndCheck('https://vendor.example.com/', strict, throwing)).toEqual({
      ok: false,
      reason: 'host name does not resolve',
    });
  });
});

describe('webhook URLs that are allowed', () => {
  it('a public https host, with the address to connect to', async () => {
    const result = await resolveAndCheck(
      'https://hooks.vendor.example.com/framecast?x=1',
      strict,
      answering(PUBLIC_V4),
    );
    expect(result).toMatchObject({ ok: true, address: PUBLIC_V4, family: 4 });
    expect(result.ok && result.url.href).toBe('https://hooks.vendor.example.com/framecast?x=1');
  });

  it('a port other than 443', async () => {
    expect(
      await resolveAndCheck('https://vendor.example.com:8443/x', strict, answering(PUBLIC_V4)),
    ).toMatchObject({
      ok: true,
    });
  });

  it('a public IP literal, without asking DNS', async () => {
    const lookup = answering('10.0.0.1');
    expect(await resolveAndCheck(`https://${PUBLIC_V4}/hook`, strict, lookup)).toMatchObject({
      ok: true,
      address: PUBLIC_V4,
      family: 4,
    });
    expect(await resolveAndCheck(`https://[${PUBLIC_V6}]/hook`, strict, lookup)).toMatchObject({
      ok: true,
      address: PUBLIC_V6,
      family: 6,
    });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('IPv4-embedding IPv6 addresses whose IPv4 address is public (NAT64 from an IPv6-only VPC)', () => {
    expect(classifyAddress('64:ff9b::5db8:d70e')).toBe('public');
    expect(classifyAddress('::ffff:93.184.215.14')).toBe('public');
    expect(classifyAddress('2002:5db8:d70e::1')).toBe('public');
  });

  it('prefers an IPv4 address when a name has both', async () => {
    expect(
      await resolveAndCheck('https://vendor.example.com/', strict, answering(PUBLIC_V6, PUBLIC_V4)),
    ).toMatchObject({
      ok: true,
      address: PUBLIC_V4,
      family: 4,
    });
    expect(await resolveAndCheck('https://vendor.example.com/', strict, answering(PUBLIC_V6))).toMatchObject({
      ok: true,
      address: PUBLIC_V6,
      family: 6,
    });
  });

  it('takes a parsed URL as well as a string', async () => {
    expect(
      await resolveAndCheck(new URL('https://vendor.example.com/'), strict, answering(PUBLIC_V4)),
    ).toMatchObject({
      ok: true,
    });
  });
});

describe('local mode (allowLoopback)', () => {
  it('allows plain http and https to loopback', async () => {
    for (const url of [
      'http://127.0.0.1:4000/hook',
      'https://127.0.0.1:4000/hook',
      'http://[::1]:4000/',
      'http://127.1:4000/',
    ]) {
      expect(await resolveAndCheck(url, local, answering())).toMatchObject({ ok: true });
    }
    expect(
      await resolveAndCheck('http://localhost:4000/hook', local, answering('::1', '127.0.0.1')),
    ).toMatchObject({ ok: true, address: '127.0.0.1', family: 4 });
  });

  it('still refuses everything that is not loopback', async () => {
    const lookup = answering(PUBLIC_V4);
    expect(await resolveAndCheck('http://10.0.0.1/', local, lookup)).toEqual({
      ok: false,
      reason: 'not https',
    });
    expect(await resolveAndCheck('https://10.0.0.1/', local, lookup)).toEqual({
      ok: false,
      reason: 'private address',
    });
    expect(await resolveAndCheck('https://169.254.169.254/', local, lookup)).toEqual({
      ok: false,
      reason: 'link-local address',
    });
    expect(await resolveAndCheck('http://vendor.example.com/', local, lookup)).toEqual({
      ok: false,
      reason: 'not https',
    });
  });

  it('refuses localhost over http when it resolves anywhere but loopback', async () => {
    expect(await resolveAndCheck('http://localhost:4000/', local, answering('10.0.0.7'))).toEqual({
      ok: false,
      reason: 'private address',
    });
    expect(await resolveAndCheck('http://localhost:4000/', local, answering(PUBLIC_V4))).toEqual({
      ok: false,
      reason: 'not https',
    });
  });

  it('is on only when FRAMECAST_WEBHOOK_ALLOW_LOOPBACK=1 says so', () => {
    const keys = ['webhookAllowLoopback', 'webhookAllowedHosts'] as const;
    expect(policyFromSettings(loadConfig(keys, {}))).toEqual({ allowLoopback: false, allowedHosts: [] });
    expect(
      policyFromSettings(loadConfig(keys, { FRAMECAST_WEBHOOK_ALLOW_LOOPBACK: '0' })).allowLoopback,
    ).toBe(false);
    expect(
      policyFromSettings(
        loadConfig(keys, {
          FRAMECAST_WEBHOOK_ALLOW_LOOPBACK: '1',
          FRAMECAST_WEBHOOK_ALLOWED_HOSTS: '.Vendor.com, x.io',
        }),
      ),
    ).toEqual({ allowLoopback: true, allowedHosts: ['.vendor.com', 'x.io'] });
  });
});

describe('the allow-list of hosts', () => {
  const policy: WebhookPolicy = { allowLoopback: false, allowedHosts: ['.vendor.com', 'hooks.partner.io'] };

  it('allows subdomains of a .suffix entry and exact matches of the others', () => {
    for (const url of [
      'https://hooks.vendor.com/',
      'https://a.b.vendor.com./',
      'https://HOOKS.PARTNER.IO/x',
    ]) {
      expect(checkUrlSyntax(url, policy)).toMatchObject({ ok: true });
    }
  });

  it('refuses every other host, including look-alikes', () => {
    for (const url of [
      'https://vendor.com/',
      'https://evilvendor.com/',
      'https://hooks.vendor.com.evil.io/',
      'https://x.hooks.partner.io/',
      `https://${PUBLIC_V4}/`,
    ]) {
      expect(checkUrlSyntax(url, policy)).toEqual({ ok: false, reason: 'host not in allowed hosts' });
    }
  });

  it('does not let an allowed host resolve to a private address', async () => {
    expect(await resolveAndCheck('https://hooks.vendor.com/', policy, answering('10.0.0.1'))).toEqual({
      ok: false,
      reason: 'private address',
    });
  });

  it('applies nothing when empty', () => {
    expect(
      checkUrlSyntax('https://anyone.example.org/', { allowLoopback: false, allowedHosts: [] }),
    ).toMatchObject({
      ok: true,
    });
  });
});

describe('registration', () => {
  it('returns the URL, or a 400 naming the field and the reason', async () => {
    const url = await requireDeliverableUrl(
      'webhook.url',
      'https://vendor.example.com/x',
      strict,
      answering(PUBLIC_V4),
    );
    expect(url.href).toBe('https://vendor.example.com/x');
    const refused = requireDeliverableUrl('webhook.url', 'https://169.254.169.254/', strict, answering());
    await expect(refused).rejects.toBeInstanceOf(FramecastError);
    await expect(refused).rejects.toMatchObject({
      status: 400,
      code: 'invalid_request',
      message: 'webhook.url: link-local address',
      details: { field: 'webhook.url', reason: 'link-local address' },
    });
  });
});

// The ranges an attacker most wants to reach, with the reason each must be refused with.
const FORBIDDEN_V4: [base: [number, number, number, number], prefix: number, reason: string][] = [
  [[10, 0, 0, 0], 8, 'private address'],
  [[172, 16, 0, 0], 12, 'private address'],
  [[192, 168, 0, 0], 16, 'private address'],
  [[127, 0, 0, 0], 8, 'loopback address'],
  [[169, 254, 0, 0], 16, 'link-local address'],
  [[100, 64, 0, 0], 10, 'shared address'],
  [[0, 0, 0, 0], 8, 'unspecified address'],
];

const forbiddenV4 = fc
  .tuple(fc.constantFrom(...FORBIDDEN_V4), fc.nat({ max: 2 ** 32 - 1 }))
  .map(([[base, prefix, reason], bits]) => {
    const network = ((base[0] << 24) | (base[1] << 16) | (base[2] << 8) | base[3]) >>> 0;
    const hostMask = 2 ** (32 - prefix) - 1;
    const value = (network + (bits % (hostMask + 1))) >>> 0;
    return { value, reason };
  });

type Radix = 'dec' | 'oct' | 'hex' | 'HEX';
const radix = fc.constantFrom<Radix>('dec', 'oct', 'hex', 'HEX');

function spell(n: number, how: Radix, zeros: number): string {
  if (how === 'dec') return String(n);
  if (how === 'oct') return '0'.repeat(1 + zeros) + n.toString(8);
  return (how === 'hex' ? '0x' : '0X') + '0'.repeat(zeros) + n.toString(16);
}

/** Every way inet_aton and the WHATWG URL parser read an IPv4 address: 1 to 4 parts, each in any radix. */
const spelling = fc
  .record({
    parts: fc.constantFrom(1, 2, 3, 4),
    radixes: fc.array(radix, { minLength: 4, maxLength: 4 }),
    zeros: fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
  })
  .map(({ parts, radixes, zeros }) => (value: number) => {
    const octets = [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
    const head = octets.slice(0, parts - 1);
    const tail = octets.slice(parts - 1).reduce((acc, octet) => acc * 256 + octet, 0);
    return [...head, tail].map((n, i) => spell(n, radixes[i] ?? 'dec', zeros[i] ?? 0)).join('.');
  });

describe('IPv4 addresses in forbidden ranges, however they are spelled', () => {
  it('are refused in a URL, with the reason of their range, local mode or not', () => {
    fc.assert(
      fc.property(forbiddenV4, spelling, fc.boolean(), ({ value, reason }, spellOut, trailingDot) => {
        const host = spellOut(value) + (trailingDot ? '.' : '');
        expect(checkUrlSyntax(`https://${host}/hook`, strict)).toEqual({ ok: false, reason });
        if (reason !== 'loopback address') {
          expect(checkUrlSyntax(`https://${host}:8443/hook`, local)).toEqual({ ok: false, reason });
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('are refused by classifyAddress, and inside IPv6 (mapped, NAT64, 6to4)', () => {
    fc.assert(
      fc.property(forbiddenV4, spelling, ({ value, reason }, spellOut) => {
        expect(classifyAddress(spellOut(value))).toBe(reason);
        const high = (value >>> 16).toString(16);
        const low = (value & 0xffff).toString(16);
        for (const v6 of [`::ffff:${high}:${low}`, `64:ff9b::${high}:${low}`, `2002:${high}:${low}::1`]) {
          expect(classifyAddress(v6)).toBe(reason);
          expect(checkUrlSyntax(`https://[${v6}]/`, strict)).toEqual({ ok: false, reason });
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('classifyAddress', () => {
  it('calls ordinary public addresses public', () => {
    for (const ip of [
      '8.8.8.8',
      '1.1.1.1',
      PUBLIC_V4,
      '172.32.0.1',
      '100.128.0.1',
      PUBLIC_V6,
      '2a00:1450:4001::200e',
    ]) {
      expect(classifyAddress(ip)).toBe('public');
    }
  });

  it('refuses what is not an address', () => {
    for (const text of [
      '',
      'example.com',
      '127.0.0.1@8.8.8.8',
      '8.8.8.8/32',
      '[::1]',
      '1.2.3.4.5',
      '08.0.0.1',
    ]) {
      expect(classifyAddress(text)).not.toBe('public');
    }
  });
});
