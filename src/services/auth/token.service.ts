import { randomUUID } from 'node:crypto';
import {
  SignJWT,
  decodeProtectedHeader,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { signingKeyRepository } from '../../repositories/auth/signing-key.repository.js';
import type { KeyService } from '../keys/key.service.js';

/**
 * Short-lived access tokens: EdDSA (Ed25519) JWTs with issuer, audience and an algorithm
 * allow-list. The key is looked up by `kid` in our own key set only: headers that try to bring
 * their own key (jwk, jku, x5u, x5c) are refused before any verification.
 */
export const ACCESS_ALG = 'EdDSA';
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'crit'] as const;

export interface AccessClaims {
  sub: string;
  sid: string;
  /** Present for org members; support users carry no org in their token. */
  org: string | null;
}

interface LoadedKey {
  kid: string;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

export class TokenService {
  private keys: LoadedKey[] = [];

  constructor(
    private readonly db: Database,
    private readonly keyService: KeyService,
    private readonly clock: Clock,
    private readonly opts: { issuer: string; audience: string; ttlSeconds: number },
  ) {}

  get ttlSeconds(): number {
    return this.opts.ttlSeconds;
  }

  /** Loads the signing keys (creating the first one if none exists). Call once at boot. */
  async init(): Promise<void> {
    const rows = await withSystem(this.db, async (tx) => {
      await signingKeyRepository.lock(tx);
      const found = await signingKeyRepository.listUsable(tx, this.clock.now());
      if (found.length > 0) return found;
      const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const kid = randomUUID();
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ACCESS_ALG, use: 'sig' };
      const privateJwk = await exportJWK(privateKey);
      const sealed = this.keyService.sealPlatformSecret(
        `signing-key:${kid}`,
        Buffer.from(JSON.stringify(privateJwk)),
      );
      await signingKeyRepository.insert(tx, {
        kid,
        publicJwk,
        privateEnc: sealed.sealed,
        masterVersion: sealed.masterVersion,
      });
      return signingKeyRepository.listUsable(tx, this.clock.now());
    });
    this.keys = await Promise.all(
      rows.map(async (r) => {
        const privateJwk = JSON.parse(
          this.keyService.openPlatformSecret(`signing-key:${r.kid}`, r.privateEnc).toString('utf8'),
        ) as JWK;
        return {
          kid: r.kid,
          publicKey: (await importJWK(r.publicJwk, ACCESS_ALG)) as CryptoKey,
          privateKey: (await importJWK(privateJwk, ACCESS_ALG)) as CryptoKey,
        };
      }),
    );
  }

  async issue(claims: AccessClaims): Promise<string> {
    const key = this.keys[0];
    if (!key) throw new AppError('internal', 'token service not initialised');
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const payload: JWTPayload = { sid: claims.sid, org: claims.org };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: ACCESS_ALG, kid: key.kid, typ: 'at+jwt' })
      .setSubject(claims.sub)
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + this.opts.ttlSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  async verify(token: string): Promise<AccessClaims> {
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new AppError('unauthenticated', 'Malformed access token');
    }
    if (header.alg !== ACCESS_ALG || FORBIDDEN_HEADERS.some((h) => h in header)) {
      throw new AppError('unauthenticated', 'Access token algorithm or header not accepted');
    }
    const key = this.keys.find((k) => k.kid === header.kid);
    if (!key) throw new AppError('unauthenticated', 'Access token signed by an unknown key');
    try {
      const { payload } = await jwtVerify(token, key.publicKey, {
        algorithms: [ACCESS_ALG],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        typ: 'at+jwt',
        currentDate: this.clock.now(),
        requiredClaims: ['sub', 'exp', 'iat', 'sid'],
      });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') throw new Error('claims');
      const org = payload.org;
      if (org !== null && typeof org !== 'string') throw new Error('claims');
      return { sub: payload.sub, sid: payload.sid, org };
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AppError('token_expired', 'Access token expired');
      throw new AppError('unauthenticated', 'Invalid access token');
    }
  }

  /** Re-seal private signing keys under the active master key (part of `sotto keys rotate`). */
  async rewrapSigningKeys(): Promise<number> {
    return withSystem(this.db, async (tx) => {
      const rows = await signingKeyRepository.lockAll(tx);
      let n = 0;
      for (const r of rows) {
        if (r.masterVersion === this.keyService.activeMasterVersion) continue;
        const label = `signing-key:${r.kid}`;
        const sealed = this.keyService.sealPlatformSecret(
          label,
          this.keyService.openPlatformSecret(label, r.privateEnc),
        );
        await signingKeyRepository.rewrap(tx, r.kid, sealed.sealed, sealed.masterVersion);
        n++;
      }
      return n;
    });
  }
}
