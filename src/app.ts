import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from './config/config.js';
import { PasswordHasher } from './crypto/password.js';
import type { Database } from './db/database.js';
import { systemClock, type Clock } from './repositories/clock.repository.js';
import { ActorService } from './services/actor.service.js';
import { AuditService } from './services/audit.service.js';
import { HealthService } from './services/health.service.js';
import { KeyService } from './services/key.service.js';
import { openLoginGuard, type LoginGuard } from './services/login-guard.js';
import { TokenService } from './services/token.service.js';

/**
 * The composition root: builds every service from its dependencies. Entry points (the CLI, tests,
 * benches) call this; nothing below it constructs its own collaborators.
 */
export interface Deps {
  config: Config;
  db: Database;
  redis: Redis | undefined;
  logger: Logger;
  clock?: Clock;
}

export interface Services {
  config: Config;
  db: Database;
  redis: Redis | undefined;
  logger: Logger;
  clock: Clock;
  hasher: PasswordHasher;
  keys: KeyService;
  audit: AuditService;
  tokens: TokenService;
  actors: ActorService;
  health: HealthService;
  loginGuard: LoginGuard;
}

export async function createServices(deps: Deps): Promise<Services> {
  const { config, db, redis, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const hasher = new PasswordHasher(config.argon2Concurrency);
  const keys = new KeyService(db, config.masterKeys);
  const audit = new AuditService(db, clock);
  const tokens = new TokenService(db, keys, clock, {
    issuer: config.publicUrl,
    audience: `${config.publicUrl}/api`,
    ttlSeconds: config.accessTokenTtlSeconds,
  });
  await tokens.init();
  const actors = new ActorService(db, tokens, audit, clock);
  const health = new HealthService(db, redis);
  // Replaced by the rate-limiter-flexible guard (services/login-guard.service.ts).
  const loginGuard: LoginGuard = openLoginGuard;
  return { config, db, redis, logger, clock, hasher, keys, audit, tokens, actors, health, loginGuard };
}
