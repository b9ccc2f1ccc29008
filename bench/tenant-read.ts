/**
 * What do row-level security and field decryption cost on an authenticated tenant read?
 *
 * Serves the real app over HTTPS (TLS 1.3) on 127.0.0.1 and drives, alternately, two routes that
 * authenticate identically (JWT + live-session check):
 *   secure: GET /api/v1/org/settings — withTenant() (SET role sotto_app, app.org_id → RLS) and
 *           AES-256-GCM decryption of the org's encrypted settings;
 *   plain:  a bench-only twin that reads the same row in the system context (no tenant settings,
 *           RLS bypassed) and returns the ciphertext's length without decrypting.
 * Reports requests/s of each and their ratio. Never pass/fail: numbers for the README.
 *
 *   npm run bench                      # PGlite
 *   DATABASE_URL=postgres://… npm run bench
 */
import autocannon from 'autocannon';
import selfsigned from 'selfsigned';
import { withSystem } from '../src/db/tenant.js';
import { actorOf } from '../src/http/plugins/auth.js';
import { buildServer } from '../src/http/server.js';
import { startTestApp } from '../test/helpers/test-app.js';
import { createOrgWithUser } from '../test/helpers/fixtures.js';

const SECONDS = Number(process.argv[2] ?? 8);
const ROUNDS = 3;
const CONNECTIONS = 16;

async function main(): Promise<void> {
  // The harness gives services on PGlite or DATABASE_URL; we build our own HTTPS server on them.
  const harness = await startTestApp({
    // The limiter would answer 429 long before the machine is saturated: lift it for both routes alike.
    env: { SOTTO_LOG_LEVEL: 'warn', SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000000' },
  });
  const { services } = harness;
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  const app = await buildServer({ services, https: { key: pems.private, cert: pems.cert } });
  app.get(
    '/bench/settings-plain',
    { onRequest: app.authenticate, config: { rateLimit: false } },
    async (req) => {
      const actor = actorOf(req);
      const { rows } = await withSystem(services.db, (tx) =>
        tx.query<{ settings_enc: Uint8Array | null }>('SELECT settings_enc FROM orgs WHERE id = $1', [
          actor.orgId,
        ]),
      );
      return { bytes: rows[0]?.settings_enc?.length ?? 0 };
    },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const admin = await createOrgWithUser(services, { role: 'owner' });
  const headers = { authorization: `Bearer ${admin.accessToken}`, 'content-type': 'application/json' };
  const patch = await app.inject({
    method: 'PATCH',
    url: '/api/v1/org/settings',
    headers,
    payload: { vocabulary: ['sertraline', 'cognitive restructuring', 'Dr. Okonkwo'] },
  });
  if (patch.statusCode !== 200) throw new Error(`could not seed settings: ${patch.statusCode} ${patch.body}`);

  const run = async (path: string): Promise<number> => {
    const result = await autocannon({
      url: `https://127.0.0.1:${port}${path}`,
      connections: CONNECTIONS,
      duration: SECONDS,
      headers,
      // Self-signed certificate of this bench's own server.
      tlsOptions: { rejectUnauthorized: false },
    } as autocannon.Options);
    if (result.non2xx > 0 || result.errors > 0) {
      throw new Error(`${path}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    }
    return result.requests.average;
  };

  const secure: number[] = [];
  const plain: number[] = [];
  await run('/api/v1/org/settings'); // warm-up: JIT, key cache, connections
  for (let i = 0; i < ROUNDS; i++) {
    secure.push(await run('/api/v1/org/settings'));
    plain.push(await run('/bench/settings-plain'));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const s = median(secure);
  const p = median(plain);
  console.log(
    `backend: ${services.db.kind}; ${ROUNDS} rounds × ${SECONDS}s × ${CONNECTIONS} connections, HTTPS TLS 1.3`,
  );
  console.log(
    `secure (RLS + decrypt): ${s.toFixed(0)} req/s  (rounds: ${secure.map((x) => x.toFixed(0)).join(', ')})`,
  );
  console.log(
    `plain  (no RLS, no decrypt): ${p.toFixed(0)} req/s  (rounds: ${plain.map((x) => x.toFixed(0)).join(', ')})`,
  );
  console.log(`ratio secure/plain: ${(s / p).toFixed(2)}`);
  await app.close();
  await harness.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
