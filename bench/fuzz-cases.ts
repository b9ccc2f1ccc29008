/**
 * Hostile request generation for the fuzzer (bench/fuzz.ts, test/fuzz-smoke.spec.ts), driven by
 * the app's own OpenAPI document so a new route is fuzzed without anyone listing it. Deterministic
 * for a seed: a 5xx found once can be replayed.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mulberry32 } from '../scripts/prng.js';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
}

export interface Operation {
  method: string;
  /** OpenAPI path, `{id}` placeholders kept. */
  path: string;
  params: { in: string; name: string; schema?: JsonSchema }[];
  body?: JsonSchema;
}

/** The ids and credentials the fuzzer knows: two orgs, so every id of B is hostile to A. */
export interface Identities {
  tokens: { ownerA: string; memberA: string; ownerB: string; workerB: string };
  ids: { a: string[]; b: string[] };
  slugs: string[];
}

export interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export function operationsOf(doc: {
  paths: Record<string, Record<string, { parameters?: Operation['params']; requestBody?: unknown }>>;
}): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    if (path.startsWith('/api/docs')) continue;
    for (const [method, op] of Object.entries(methods)) {
      const content = (op.requestBody as { content?: Record<string, { schema?: JsonSchema }> } | undefined)
        ?.content;
      ops.push({
        method: method.toUpperCase(),
        path,
        params: op.parameters ?? [],
        ...(content?.['application/json']?.schema ? { body: content['application/json'].schema } : {}),
      });
    }
  }
  // Routes the document hides or cannot describe: probes, the panel's catch-all, the sockets.
  for (const path of ['/healthz', '/readyz', '/', '/no/such/route', '/api/v1/no-such-route'])
    ops.push({ method: 'GET', path, params: [] });
  return ops;
}

/** Seeded case picking: the same seed sends the same requests. */
export const rng = mulberry32;

const BIDI = '\u202Eexe.txt\u2066\u200F\u061C';
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '" OR 1=1 --',
  '$(reboot)',
  '`id`',
  '../../../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '%00',
  '\u0000',
  '\r\nX-Injected: 1',
  '<script>alert(1)</script>',
  '{{7*7}}${7*7}',
  '{"$gt":""}',
  BIDI,
  '\uFEFF\u200B\u2028\u2029',
  '\uD800',
  '🏳️‍🌈'.repeat(50),
  'Ａ'.repeat(300),
  'a'.repeat(10_000),
  'x'.repeat(300_000),
  '-1',
  '1e309',
  'NaN',
  'null',
  'true',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '%',
  '\\',
  'http://169.254.169.254/latest/meta-data/',
];

const HOSTILE_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  -2147483649,
  2 ** 53 + 2, // past Number.MAX_SAFE_INTEGER
  1e308,
  -1e308,
  [],
  [null],
  {},
  { __proto__: { admin: true } },
  JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}'),
  Array.from({ length: 2000 }, (_, i) => i),
];

/** Percent-encodes; a lone surrogate becomes invalid UTF-8 on the wire, itself a hostile case. */
const enc = (s: string): string => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** A value that satisfies the schema as far as a simple reading of it goes. */
export function sampleOf(s: JsonSchema | undefined, r: () => number, id: string, depth = 0): unknown {
  if (!s || depth > 6) return 'x';
  if (s.const !== undefined) return s.const;
  if (s.enum?.length) return pick(r, s.enum);
  const alt = s.anyOf ?? s.oneOf;
  if (alt?.length) return sampleOf(pick(r, alt), r, id, depth + 1);
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'string':
      if (s.format === 'uuid') return id;
      if (s.format === 'email') return 'fuzz@example.com';
      if (s.format === 'date-time') return '2026-01-01T00:00:00.000Z';
      if (s.format === 'uri') return 'https://hooks.example.com/x';
      return 'f'.repeat(Math.max(s.minLength ?? 1, 1));
    case 'integer':
    case 'number':
      return s.minimum ?? 1;
    case 'boolean':
      return r() < 0.5;
    case 'array':
      return Array.from({ length: Math.max(s.minItems ?? 1, 1) }, () => sampleOf(s.items, r, id, depth + 1));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {}))
        if (s.required?.includes(k) || r() < 0.5) out[k] = sampleOf(v, r, id, depth + 1);
      return out;
    }
    default:
      return 'x';
  }
}

/** One mutation of a schema-valid body: wrong type, missing, extra, oversized, out of range… */
function mutate(body: unknown, s: JsonSchema | undefined, r: () => number): { value: unknown; note: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || r() < 0.1)
    return { value: pick(r, [...HOSTILE_VALUES, ...HOSTILE_STRINGS]), note: 'whole body replaced' };
  const obj = { ...(body as Record<string, unknown>) };
  const keys = Object.keys(s?.properties ?? obj);
  const key = keys.length ? pick(r, keys) : 'field';
  const prop = s?.properties?.[key];
  const roll = r();
  if (roll < 0.15) {
    delete obj[key];
    return { value: obj, note: `missing ${key}` };
  }
  if (roll < 0.25) {
    obj[pick(r, ['extra', '__proto__', 'orgId', 'role', 'isAdmin'])] = pick(r, HOSTILE_VALUES);
    return { value: obj, note: 'extra field' };
  }
  if (roll < 0.45) {
    obj[key] = pick(r, HOSTILE_VALUES);
    return { value: obj, note: `${key}: wrong type` };
  }
  if (roll < 0.55 && prop && (prop.maximum !== undefined || prop.minimum !== undefined)) {
    obj[key] = pick(r, [(prop.maximum ?? 0) + 1, (prop.minimum ?? 0) - 1, 1e21, -0, 0.5]);
    return { value: obj, note: `${key}: out of range` };
  }
  if (roll < 0.65 && prop?.type === 'object') {
    obj[key] = mutate(sampleOf(prop, r, ''), prop, r).value;
    return { value: obj, note: `${key}: nested mutation` };
  }
  if (roll < 0.75 && prop?.type === 'array') {
    obj[key] = Array.from({ length: pick(r, [0, 1, 500, 5000]) }, () =>
      pick(r, [...HOSTILE_STRINGS, 1, null]),
    );
    return { value: obj, note: `${key}: hostile array` };
  }
  obj[key] = pick(r, HOSTILE_STRINGS);
  return { value: obj, note: `${key}: hostile string` };
}

/** Header values node's client will send (it refuses control and non-ASCII characters itself). */
const printableAscii = (s: string): string =>
  [...s].filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) < 0x7f).join('');

// JWTs the server must refuse: none of these carry its signature.
const b64u = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const { privateKey: foreignKey, publicKey: foreignPublic } = generateKeyPairSync('ed25519');
function foreignJwt(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), foreignKey).toString('base64url')}`;
}

export function hostileAuthorizations(ids: Identities, r: () => number): { note: string; value: string } {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: ids.ids.a[0],
    sid: ids.ids.a[1],
    org: ids.ids.a[2],
    iss: 'https://sotto.test',
    aud: 'sotto',
    iat: now,
    exp: now + 600,
  };
  const real = ids.tokens.ownerA;
  const [h, p] = real.split('.');
  const cases: [string, () => string][] = [
    ['alg none', () => `Bearer ${b64u({ alg: 'none', typ: 'at+jwt' })}.${b64u(claims)}.`],
    ['alg none, real claims', () => `Bearer ${b64u({ alg: 'none' })}.${p}.`],
    ['forged EdDSA', () => `Bearer ${foreignJwt({ alg: 'EdDSA', typ: 'at+jwt' }, claims)}`],
    [
      'expired, forged',
      () => `Bearer ${foreignJwt({ alg: 'EdDSA', typ: 'at+jwt' }, { ...claims, exp: now - 3600 })}`,
    ],
    [
      'embedded jwk',
      () => `Bearer ${foreignJwt({ alg: 'EdDSA', jwk: foreignPublic.export({ format: 'jwk' }) }, claims)}`,
    ],
    ['HS256 confusion', () => `Bearer ${b64u({ alg: 'HS256' })}.${p}.${'A'.repeat(43)}`],
    [
      'real header, altered claims',
      () => `Bearer ${h}.${b64u({ ...claims, org: ids.ids.b[2] })}.${real.split('.')[2]}`,
    ],
    ['truncated', () => `Bearer ${real.slice(0, -5)}`],
    ['garbage', () => `Bearer ${printableAscii(pick(r, HOSTILE_STRINGS))}`],
    ['other scheme', () => `Basic ${Buffer.from('admin:admin').toString('base64')}`],
    ['empty bearer', () => 'Bearer '],
    ['huge', () => `Bearer ${'a'.repeat(16_000)}`],
    ['api token shape', () => 'Bearer sotto_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['worker token on user route', () => `Bearer ${ids.tokens.workerB}`],
  ];
  const [note, make] = pick(r, cases);
  return { note, value: make() };
}

function pathValue(r: () => number, ids: Identities, name: string): { v: string; note: string } {
  const roll = r();
  if (name === 'orgSlug' && roll < 0.5) return { v: pick(r, ids.slugs), note: 'slug' };
  if (roll < 0.3) return { v: pick(r, ids.ids.b), note: "other org's id" };
  if (roll < 0.5) return { v: pick(r, ids.ids.a), note: 'own id' };
  const s = pick(r, HOSTILE_STRINGS).slice(0, 3000);
  return { v: enc(s), note: 'hostile path param' };
}

function queryOf(op: Operation, r: () => number, ids: Identities): { qs: string; note: string } {
  const q = op.params.filter((p) => p.in === 'query');
  if (q.length === 0 && r() < 0.8) return { qs: '', note: '' };
  const parts: string[] = [];
  for (const p of q)
    if (r() < 0.7) {
      const v =
        r() < 0.4
          ? String(sampleOf(p.schema, r, pick(r, ids.ids.a)))
          : String(pick(r, [...HOSTILE_STRINGS, ...HOSTILE_VALUES]));
      parts.push(`${enc(p.name)}=${enc(v.slice(0, 5000))}`);
    }
  if (r() < 0.2) parts.push(pick(r, ['a[b]=1', 'a=1&a=2', '__proto__[x]=1', '%zz=1', '=', '&&&']));
  return { qs: parts.length ? `?${parts.join('&')}` : '', note: 'query' };
}

/** One hostile HTTP request for an operation. */
export function requestFor(op: Operation, r: () => number, ids: Identities): FuzzRequest {
  const notes: string[] = [];
  let path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const { v, note } = pathValue(r, ids, name);
    notes.push(note);
    return v;
  });
  const { qs, note: qnote } = queryOf(op, r, ids);
  if (qnote) notes.push(qnote);
  path += qs;
  const headers: Record<string, string> = {};
  const auth = r();
  if (auth < 0.45)
    headers.authorization = `Bearer ${path.startsWith('/api/v1/worker') ? ids.tokens.workerB : ids.tokens.ownerA}`;
  else if (auth < 0.55) headers.authorization = `Bearer ${ids.tokens.memberA}`;
  else if (auth < 0.65) headers.authorization = `Bearer ${ids.tokens.ownerB}`;
  else if (auth < 0.9) {
    const h = hostileAuthorizations(ids, r);
    headers.authorization = h.value;
    notes.push(`auth: ${h.note}`);
  } else notes.push('no auth');
  if (r() < 0.05) headers['x-sotto-org'] = pick(r, [...ids.ids.b, 'not-a-uuid', '']);

  let body: Buffer | undefined;
  const hasBody = op.method !== 'GET' && op.method !== 'DELETE' ? true : r() < 0.1;
  if (hasBody) {
    const shape = r();
    if (shape < 0.6) {
      const { value, note } = mutate(sampleOf(op.body, r, pick(r, [...ids.ids.a, ...ids.ids.b])), op.body, r);
      notes.push(note);
      body = Buffer.from(JSON.stringify(value) ?? 'null');
      headers['content-type'] = 'application/json';
    } else if (shape < 0.75) {
      body = Buffer.from(
        pick(r, [
          '{',
          '{"a":',
          '[1,2',
          '{"a":1}}',
          '\u0000',
          '{"a":"\\ud800"}',
          '{"a":1,"a":2}',
          'nul',
          '{'.repeat(5000),
        ]),
      );
      headers['content-type'] = 'application/json';
      notes.push('malformed JSON');
    } else if (shape < 0.9) {
      body = Buffer.from(JSON.stringify(sampleOf(op.body, r, pick(r, ids.ids.a))));
      headers['content-type'] = pick(r, [
        'text/plain',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data',
        'application/json; charset=utf-16',
        'application/json; charset=utf-7',
        'application/octet-stream',
        '',
        'application/vnd.api+json',
      ]);
      notes.push(`content-type ${headers['content-type'] || '(empty)'}`);
    } else {
      body = Buffer.alloc(pick(r, [0, 1, 2 * 1024 * 1024]), 0x7b);
      headers['content-type'] = 'application/json';
      notes.push(`raw ${body.length} bytes`);
    }
  }
  return { kind: notes.join('; ') || 'plain', method: op.method, path, headers, ...(body ? { body } : {}) };
}

/** Multipart uploads that are not what they claim: the upload route's own hostile cases. */
export function multipartRequest(r: () => number, ids: Identities): FuzzRequest {
  const boundary = pick(r, ['fuzzb', 'x'.repeat(70), 'a b', '"quoted"']);
  const part = (name: string, data: Buffer | string, filename?: string) =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n` +
          `Content-Type: ${filename ? 'audio/wav' : 'text/plain'}\r\n\r\n`,
      ),
      Buffer.isBuffer(data) ? data : Buffer.from(data),
      Buffer.from('\r\n'),
    ]);
  const riff = Buffer.concat([Buffer.from('RIFF\xff\xff\xff\x7fWAVEfmt ', 'latin1'), Buffer.alloc(64, 0xff)]);
  const cases: [string, () => { body: Buffer; ct: string }][] = [
    [
      'garbage audio',
      () => ({
        body: Buffer.concat([
          part('audio', Buffer.alloc(4096, 7), 'a.wav'),
          Buffer.from(`--${boundary}--\r\n`),
        ]),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
    [
      'lying RIFF header',
      () => ({
        body: Buffer.concat([part('audio', riff, 'a.wav'), Buffer.from(`--${boundary}--\r\n`)]),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
    ['no boundary', () => ({ body: part('audio', 'x', 'a.wav'), ct: 'multipart/form-data' })],
    [
      'boundary too long',
      () => ({ body: part('audio', 'x', 'a.wav'), ct: `multipart/form-data; boundary=${'b'.repeat(200)}` }),
    ],
    [
      'cut short',
      () => ({
        body: part('audio', Buffer.alloc(100, 1), 'a.wav').subarray(0, 60),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
    [
      'fields only',
      () => ({
        body: Buffer.concat([
          part('title', pick(r, HOSTILE_STRINGS).slice(0, 10_000)),
          part('speakers', '-5'),
          part('language', BIDI),
          Buffer.from(`--${boundary}--\r\n`),
        ]),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
    [
      'many files',
      () => ({
        body: Buffer.concat([
          ...Array.from({ length: 20 }, (_, i) => part(`audio${i}`, 'x', `${i}.wav`)),
          Buffer.from(`--${boundary}--\r\n`),
        ]),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
    [
      'many fields',
      () => ({
        body: Buffer.concat([
          ...Array.from({ length: 300 }, (_, i) => part(`f${i}`, 'x')),
          Buffer.from(`--${boundary}--\r\n`),
        ]),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
    [
      'hostile filename',
      () => ({
        body: Buffer.concat([
          part('audio', Buffer.alloc(64, 3), `../../${BIDI}\u0000.wav`),
          Buffer.from(`--${boundary}--\r\n`),
        ]),
        ct: `multipart/form-data; boundary=${boundary}`,
      }),
    ],
  ];
  const [note, make] = pick(r, cases);
  const { body, ct } = make();
  return {
    kind: `multipart: ${note}`,
    method: 'POST',
    path: '/api/v1/recordings',
    headers: {
      authorization: `Bearer ${r() < 0.8 ? ids.tokens.ownerA : ids.tokens.ownerB}`,
      'content-type': ct,
    },
    body,
  };
}

/** A WebSocket upgrade request (written raw on a TLS socket by the runner). */
export function upgradeRequest(r: () => number, ids: Identities): FuzzRequest {
  const target = pick(r, [
    `/api/v1/recordings/${pick(r, [...ids.ids.a, ...ids.ids.b])}/live`,
    `/api/v1/recordings/${pick(r, [...ids.ids.a, ...ids.ids.b])}/watch`,
    `/api/v1/recordings/${enc(pick(r, HOSTILE_STRINGS).slice(0, 200))}/live`,
    '/healthz',
    '/api/v1/me',
    '/',
    '/no/such',
  ]);
  const headers: Record<string, string> = {
    upgrade: pick(r, ['websocket', 'WebSocket', 'h2c', 'websocket, foo']),
    connection: 'Upgrade',
    'sec-websocket-version': pick(r, ['13', '8', '99', '']),
    'sec-websocket-key': pick(r, ['dGhlIHNhbXBsZSBub25jZQ==', '', 'not base64', 'A'.repeat(500)]),
  };
  const a = r();
  if (a < 0.4)
    headers.authorization = `Bearer ${pick(r, [ids.tokens.ownerA, ids.tokens.ownerB, ids.tokens.memberA])}`;
  else if (a < 0.7) headers.authorization = hostileAuthorizations(ids, r).value;
  if (r() < 0.3)
    headers['sec-websocket-protocol'] = pick(r, ['sotto.ticket.AAAA', 'x'.repeat(4000), 'a,b,c', 'sotto.v1']);
  return { kind: `upgrade ${target.slice(0, 60)}`, method: 'GET', path: target, headers };
}
