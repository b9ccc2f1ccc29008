import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { buildServer } from '../../src/http/server.js';
import { ensureSelfSignedCert } from '../../src/adapters/network/tls.adapter.js';
import { verificationToken } from './auth-client.js';
import { hasCorpus, noCorpusReason } from './corpus.js';
import { panelWebRoot } from './panel-build.js';
import { startTestApp, type TestApp } from './test-app.js';

/**
 * A real browser against a real HTTPS listener serving a fresh Vite build of web/ under the
 * production CSP: the shared set-up of the panel's browser specs.
 */
export const CHROMIUM = process.env.SOTTO_CHROMIUM ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const noChromiumReason = `Chromium not found at ${CHROMIUM} (apt-get install chromium)`;
export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
/**
 * Where the specs' screenshots go: docs/screenshots when regenerating them on purpose
 * (`npm run screenshots`), else a private temporary folder, removed when the run ends, so that
 * a test run never changes tracked files.
 */
export const screenshotDir = process.env.SOTTO_SCREENSHOTS
  ? path.join(repoRoot, 'docs', 'screenshots')
  : temporaryScreenshots();

function temporaryScreenshots(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-screenshots-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Panel {
  t: TestApp;
  base: string;
  browser: Browser;
  /** Every CSP violation, console CSP error and page error seen by pages from newPage. */
  cspViolations: string[];
  /** A private folder for the spec's own files (a WAV, a data dir), removed with the panel. */
  dir: string;
  newContext(viewport?: { width: number; height: number }): Promise<BrowserContext>;
  newPage(ctx: BrowserContext, sink?: string[]): Promise<Page>;
  /** Logs `user` in through the login page and waits for the Recordings page it lands on. */
  loginAs(page: Page, user: Credentials): Promise<void>;
  /**
   * Signs a new organization up through /signup, opens the emailed link, logs in and waits for
   * the Recordings page.
   */
  signUp(page: Page, person: Signup): Promise<void>;
  close(): Promise<void>;
}

export interface Credentials {
  email: string;
  password: string;
}

/** What the signup form asks for. */
export interface Signup extends Credentials {
  name: string;
  org: string;
}

export interface PanelOptions {
  /** Extra Chromium command-line switches (e.g. a fake microphone for the live screens). */
  browserArgs?: string[];
}

export interface PanelSetup extends PanelOptions {
  /** The app's environment, over the panel's defaults. */
  env?: Record<string, string>;
  /** The recognizer: replayed by default, real where a spec needs recognition to take its time. */
  engine?: 'replay' | 'real';
}

/** The set-up made when the panel starts, given the panel's folder (Panel.dir). */
export type PanelSetupFn = (dir: string) => PanelSetup | Promise<PanelSetup>;

export async function startPanel(
  env: Record<string, string> | PanelSetupFn = {},
  opts: PanelOptions = {},
): Promise<Panel> {
  const work = mkdtempSync(path.join(tmpdir(), 'sotto-panel-'));
  const dir = path.join(work, 'files');
  mkdirSync(dir);
  let t: TestApp | undefined;
  let server: FastifyInstance | undefined;
  let browser: Browser | undefined;
  let port = 0;
  const close = async () => {
    await browser?.close();
    await server?.close();
    await t?.close();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const setup = typeof env === 'function' ? await env(dir) : { env, ...opts };
    const webRoot = await panelWebRoot(repoRoot, work);
    t = await startTestApp({
      env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000', ...setup.env },
      ...(setup.engine ? { engine: setup.engine } : {}),
    });
    const cert = await ensureSelfSignedCert(path.join(work, 'tls'), []);
    server = await buildServer({ services: t.services, https: cert, webRoot });
    await server.listen({ port: 0, host: '127.0.0.1' });
    const addr = server.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    port = addr.port;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        ...(setup.browserArgs ?? []),
      ],
    });
  } catch (err) {
    await close();
    throw err;
  }
  const cspViolations: string[] = [];
  const b = browser;
  const base = `https://127.0.0.1:${port}`;
  const panel: Panel = {
    t,
    base,
    browser: b,
    cspViolations,
    dir,
    newContext: (viewport = { width: 1100, height: 760 }) =>
      b.newContext({ ignoreHTTPSErrors: true, viewport }),
    async newPage(ctx, sink = cspViolations) {
      const page = await ctx.newPage();
      // Runs before the app's scripts; reports every CSP violation the page would otherwise swallow.
      await page.addInitScript({
        content: `document.addEventListener('securitypolicyviolation', (e) =>
          console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));`,
      });
      page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy|CSP violation|Refused to/i.test(m.text()))
          sink.push(m.text());
      });
      page.on('pageerror', (err) => sink.push(`page error: ${err.message}`));
      return page;
    },
    async loginAs(page, user) {
      await logIn(page, base, user.email, user.password);
      await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    },
    async signUp(page, person) {
      await page.goto(`${base}/signup`);
      await fillSignup(page, person);
      await finishSignup(page, panel, person.email, person.password);
      await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    },
    close,
  };
  return panel;
}

/** What a browser spec holds of its panel: everything but close, which usePanel's afterAll owns. */
export type PanelHandle = Omit<Panel, 'close'>;

/** How long starting a panel may take: the run's one Vite build may be under way in another spec. */
const START_TIMEOUT_MS = 180_000;

/**
 * The panel of a browser spec's describe block, the one way the specs set it up: started in a
 * beforeAll (a fresh test app with `setup`'s env, HTTPS, the Vite build, Chromium), closed in an
 * afterAll (browser and every context, server, app, Panel.dir). Hooks registered after this
 * call run after the start and, vitest running afterAll hooks in reverse (sequence.hooks
 * "stack"), before the close. `setup` as a function is called at the start, with Panel.dir, for
 * an env or browser switches that need files or must not be made while tests are collected.
 */
export function usePanel(setup: PanelSetup | PanelSetupFn = {}): PanelHandle {
  let panel: Panel | undefined;
  const started = (): Panel => {
    if (!panel) throw new Error('the panel is not started: use it in hooks and tests after usePanel()');
    return panel;
  };
  beforeAll(async () => {
    panel = await startPanel(typeof setup === 'function' ? setup : () => setup);
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    await panel?.close();
  });
  return {
    get t() {
      return started().t;
    },
    get base() {
      return started().base;
    },
    get browser() {
      return started().browser;
    },
    get cspViolations() {
      return started().cspViolations;
    },
    get dir() {
      return started().dir;
    },
    newContext: (viewport) => started().newContext(viewport),
    newPage: (ctx, sink) => started().newPage(ctx, sink),
    loginAs: (page, user) => started().loginAs(page, user),
    signUp: (page, person) => started().signUp(page, person),
  };
}

/**
 * Gives a fixture user (made without a password one can type) `password`, to log in through
 * the panel; the user is returned with it, ready for loginAs.
 */
export async function withPassword<U extends { userId: string }>(
  t: TestApp,
  user: U,
  password: string,
): Promise<U & { password: string }> {
  await t.db.query('UPDATE users SET password_hash = $1 WHERE id = $2', [
    await t.services.hasher.hash(password),
    user.userId,
  ]);
  return { ...user, password };
}

/**
 * Why the browser spec `spec` cannot run here ('' when it can: Chromium, the corpus too when
 * `needsCorpus`, and no `otherReason` of its own, such as a missing tool), warned once so a
 * skipped run says why. Use as describe.skipIf(Boolean(reason)).
 */
export function panelSkipReason(spec: string, needsCorpus = false, otherReason = ''): string {
  const reason = needsCorpus && !hasCorpus ? noCorpusReason : !hasChromium ? noChromiumReason : otherReason;
  if (reason) console.warn(`${spec} skipped: ${reason}`);
  return reason;
}

/** Logs in through the panel's login page (the caller waits for where it lands). */
export async function logIn(page: Page, base: string, email: string, password: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/**
 * After "Create account": the panel says to check the mail; the link (from the development log,
 * the mailbox when SMTP is not configured) is opened as from a mail client, then the person logs
 * in (the caller waits for where it lands).
 */
/** Fills the signup form on the page as it is and sends it (the caller waits for what follows). */
export async function fillSignup(page: Page, person: Signup): Promise<void> {
  await page.getByLabel('Your name').fill(person.name);
  await page.getByLabel('Email').fill(person.email);
  await page.getByLabel('Password', { exact: true }).fill(person.password);
  await page.getByLabel('Organization').fill(person.org);
  await page.getByRole('button', { name: 'Create account' }).click();
}

export async function finishSignup(
  page: Page,
  panel: Pick<Panel, 't' | 'base'>,
  email: string,
  password: string,
): Promise<void> {
  await page.getByRole('heading', { name: 'Check your email' }).waitFor();
  const token = await verificationToken(panel.t, email);
  await page.goto(`${panel.base}/verify-email#token=${token}`);
  await page.getByRole('heading', { name: 'Email verified' }).waitFor();
  await logIn(page, panel.base, email, password);
}

/** A tab of the Organization page's section navigation. */
export const orgTab = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Organization sections' }).getByRole('link', { name, exact: true });

/**
 * Opens an Organization section by its tab; at phone width the tabs are folded behind the
 * "Section: …" button (org-page.tsx), which is opened first.
 */
export async function goToOrgTab(page: Page, name: string): Promise<void> {
  // By the viewport, not by what is on screen: right after a resize the page may not have
  // re-rendered yet (styles.css and media.ts switch at 720 px).
  if ((page.viewportSize()?.width ?? 1024) <= 720) {
    const toggle = page.locator('.org-sections-toggle');
    await toggle.waitFor();
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  }
  await orgTab(page, name).click();
}
