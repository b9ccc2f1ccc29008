import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { call, freshIp, login } from './helpers/auth-client.js';
import { bearer } from './helpers/fixtures.js';
import { panelSkipReason, screenshotDir as shots, usePanel } from './helpers/panel.js';
import { startSamlIdp, type TestSamlIdp } from './helpers/saml-idp.js';
import { backendLabel } from './helpers/test-app.js';

/**
 * Organization → Single sign-on, SAML 2.0, in Chromium under the production CSP: an owner picks
 * SAML, is stopped before sending metadata that is too large, sees the API's own refusal of a
 * metadata document with a DTD under the field, uploads a real IdP's metadata file, and is shown
 * the SP entity id, ACS URL and SP metadata URL (as the API has them, copyable) and the IdP's
 * sign-in URL and certificate fingerprint; then removes the connection past a confirmation.
 */
const skipReason = panelSkipReason('panel-sso-saml');

const PASSWORD = 'amber-harbor-lantern-63';
// SOTTO_PUBLIC_URL of the test app.
const PUBLIC = 'https://sotto.test';

describe.skipIf(Boolean(skipReason))(`SAML single sign-on screen in Chromium (${backendLabel})`, () => {
  const panel = usePanel();
  let idp: TestSamlIdp;
  let ctx: BrowserContext;
  let page: Page;
  const stamp = Date.now();
  const ownerEmail = `owner-${stamp}@example.test`;

  beforeAll(async () => {
    idp = await startSamlIdp(`harbor-${stamp}`);
  }, 120_000);

  const api = (token: string, url: string, method: 'GET' | 'DELETE' = 'GET') =>
    call(panel.t, freshIp(), { method, url, headers: bearer(token) });
  const fitsPhone = async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    const fits = await page.evaluate(
      'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
    );
    await page.setViewportSize({ width: 1100, height: 760 });
    return fits;
  };

  it('an owner uploads IdP metadata and is shown what to give the IdP, as the API has it', async () => {
    ctx = await panel.newContext();
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: panel.base });
    page = await panel.newPage(ctx);
    await panel.signUp(page, {
      name: 'Sami Saml',
      email: ownerEmail,
      password: PASSWORD,
      org: 'Harbor Practice',
    });
    const { accessToken } = await login(panel.t, { email: ownerEmail, password: PASSWORD, ip: freshIp() });

    await page.goto(`${panel.base}/org/sso`);
    await page.getByText('Not set up yet').waitFor();
    // OpenID Connect is the default; SAML has its own form.
    expect(await page.getByRole('radio', { name: 'OpenID Connect' }).isChecked()).toBe(true);
    await page.getByRole('radio', { name: 'SAML 2.0' }).check();
    const form = page.getByRole('form', { name: 'SAML 2.0 connection' });
    await form.waitFor();
    expect(await page.getByLabel('Issuer URL').count()).toBe(0);
    const metadataError = page.locator('#sso-saml-metadata-error');

    // Nothing given: said under the field, nothing sent.
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await metadataError.filter({ hasText: "Choose your identity provider's metadata file" }).waitFor();

    // Over the API's limit: refused in the browser before sending, with the size shown.
    const metadataBox = page.getByLabel('Identity provider metadata (XML)');
    await metadataBox.fill(`<!-- ${'x'.repeat(100_000)} -->`);
    await page.getByTestId('saml-metadata-size').filter({ hasText: '100,009 of at most 100,000' }).waitFor();
    await page.getByLabel('Allowed email domains').fill(`harbor-${stamp}.test`);
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await metadataError.filter({ hasText: 'the limit is 100,000' }).waitFor();
    expect((await api(accessToken, '/api/v1/org/sso')).statusCode).toBe(404);

    // A DTD (entity expansion, XXE): the API refuses it, and its reason is shown under the field.
    await metadataBox.fill(
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>${idp.metadata().slice(21)}`,
    );
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await metadataError.filter({ hasText: 'must not contain a DTD' }).waitFor();
    expect(await metadataBox.getAttribute('aria-invalid')).toBe('true');
    expect((await api(accessToken, '/api/v1/org/sso')).statusCode).toBe(404);

    // The real metadata, as a file read in the browser.
    const xml = idp.metadata();
    await page.locator('#sso-saml-file').setInputFiles({
      name: 'idp-metadata.xml',
      mimeType: 'application/xml',
      buffer: Buffer.from(xml),
    });
    await page.getByText('Read from idp-metadata.xml').waitFor();
    expect(await metadataBox.inputValue()).toBe(xml);
    await page
      .getByTestId('saml-metadata-size')
      .filter({ hasText: `${xml.length.toLocaleString('en')} of at most 100,000` })
      .waitFor();
    await page.getByLabel('Role attribute').fill('groups');
    await page.getByLabel('Values that make someone an admin').fill('sotto-admins');
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await page.getByRole('status').filter({ hasText: 'Single sign-on saved.' }).waitFor();

    // What the API stored is what the screen shows.
    const stored = await api(accessToken, '/api/v1/org/sso');
    expect(stored.statusCode).toBe(200);
    const conn = stored.json() as {
      kind: string;
      issuer: string;
      saml: {
        spEntityId: string;
        acsUrl: string;
        idpSsoUrl: string;
        certificates: { fingerprint256: string }[];
      };
    };
    const fingerprint = new X509Certificate(idp.certPem).fingerprint256;
    expect(conn).toMatchObject({
      kind: 'saml',
      issuer: idp.entityId,
      allowedDomains: [`harbor-${stamp}.test`],
      roleClaim: 'groups',
      roleMapping: { 'sotto-admins': 'admin' },
      requireSso: false,
      saml: { acsUrl: `${PUBLIC}/api/v1/auth/sso/saml/acs`, idpSsoUrl: idp.ssoUrl },
    });
    expect(conn.saml.certificates.map((c) => c.fingerprint256)).toEqual([fingerprint]);
    const me = (await api(accessToken, '/api/v1/me')).json() as { organization: { slug: string } };
    const metadataUrl = `${PUBLIC}/api/v1/auth/sso/saml/${me.organization.slug}/metadata`;
    const text = (id: string) => page.getByTestId(id).innerText();
    expect(await text('saml-sp-entity-id')).toBe(conn.saml.spEntityId);
    expect(await text('saml-acs-url')).toBe(conn.saml.acsUrl);
    expect(await text('saml-sp-metadata-url')).toBe(metadataUrl);
    expect(await text('saml-idp-entity-id')).toBe(idp.entityId);
    expect(await text('saml-idp-sso-url')).toBe(idp.ssoUrl);
    expect(await text('saml-cert-fingerprint')).toBe(fingerprint);
    // The SP metadata URL shown is the one the API serves, naming the same entity id and ACS URL.
    const spMetadata = await call(panel.t, freshIp(), {
      method: 'GET',
      url: metadataUrl.slice(PUBLIC.length),
    });
    expect(spMetadata.statusCode).toBe(200);
    expect(spMetadata.body).toContain(`entityID="${conn.saml.spEntityId}"`);
    expect(spMetadata.body).toContain(conn.saml.acsUrl);

    await page.screenshot({ path: path.join(shots, 'org-sso-saml.png'), fullPage: true });
    expect(await fitsPhone()).toBe(true);

    for (const [label, value] of [
      ['Copy SP entity ID', conn.saml.spEntityId],
      ['Copy ACS URL', conn.saml.acsUrl],
      ['Copy SP metadata URL', metadataUrl],
    ] as const) {
      await page.getByRole('button', { name: label }).click();
      expect(await page.evaluate('navigator.clipboard.readText()')).toBe(value);
    }

    // Switching kind: said on the screen; no kind chooser while a connection exists.
    await page
      .getByTestId('sso-kind-note')
      .filter({ hasText: 'remove this connection below first' })
      .waitFor();
    expect(await page.getByRole('radio', { name: 'OpenID Connect' }).count()).toBe(0);

    // The metadata is not stored, so a save needs it again; Require SSO warns as for OIDC.
    await page.reload();
    await page.getByTestId('saml-acs-url').waitFor();
    expect(await metadataBox.inputValue()).toBe('');
    await page.getByText('Require single sign-on for admins and members').click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'every admin and member except you is signed out' })
      .waitFor();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await metadataError.filter({ hasText: 'Give the metadata again' }).waitFor();
    expect(await fitsPhone()).toBe(true);
  }, 90_000);

  it('removing the connection asks first (safe choice focused), then offers both kinds again', async () => {
    await page.getByRole('button', { name: 'Remove single sign-on…' }).click();
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Keep it');
    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'connection was removed' }).waitFor();
    await page.getByText('Not set up yet').waitFor();
    await page.getByRole('radio', { name: 'SAML 2.0' }).waitFor();
    const { accessToken } = await login(panel.t, { email: ownerEmail, password: PASSWORD, ip: freshIp() });
    expect((await api(accessToken, '/api/v1/org/sso')).statusCode).toBe(404);
  }, 60_000);

  it('no page had a CSP violation', () => {
    expect(panel.cspViolations).toEqual([]);
  });
});
