import { AxeBuilder } from '@axe-core/playwright';
import type { Locator, Page } from 'playwright-core';

/**
 * What a person sees, checked the same way by the panel specs: an element with a real size,
 * inside the viewport, that is what the page shows at its centre (not covered), and a page that
 * does not scroll sideways.
 */
export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 390, height: 844 };

export interface Seen {
  top: number;
  left: number;
  width: number;
  height: number;
  inViewport: boolean;
  onTop: boolean;
}

/** The element's box and whether it is really on screen and not covered. */
export async function seen(loc: Locator): Promise<Seen> {
  await loc.waitFor();
  return loc.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2;
    const y = r.top + Math.min(r.height / 2, 10);
    const hit = document.elementFromPoint(x, y);
    return {
      top: r.top,
      left: r.left,
      width: r.width,
      height: r.height,
      // Half a pixel of sub-pixel layout is not off screen.
      inViewport:
        r.left >= -0.5 && r.top >= -0.5 && r.right <= innerWidth + 0.5 && r.bottom <= innerHeight + 0.5,
      onTop: !!hit && (el === hit || el.contains(hit)),
    };
  });
}

/**
 * Throws unless `loc` is visible with a non-zero size inside the viewport and not covered;
 * with `scroll`, after scrolling it into view as a person would (a long page on a phone).
 */
export async function expectSeen(loc: Locator, what: string, scroll = false): Promise<void> {
  if (scroll) await loc.scrollIntoViewIfNeeded();
  const ok = (s: Seen) => s.width > 0 && s.height > 0 && s.inViewport && s.onTop;
  let s = await seen(loc);
  // A scroll or a layout change may still be settling: give it a moment, never a pass.
  for (let i = 0; i < 10 && !ok(s); i++) {
    await loc.page().waitForTimeout(100);
    s = await seen(loc);
  }
  if (!ok(s)) throw new Error(`${what} is not really on screen: ${JSON.stringify(s)}`);
}

/** The page's scroll width beyond the viewport's (0 when nothing scrolls sideways). */
export function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate(() => (document.scrollingElement?.scrollWidth ?? 0) - innerWidth);
}

/**
 * Serious and critical axe violations of the page as it is now, as readable lines. axe runs inside
 * the page (`setLegacyMode`): the default mode finishes every run in a new blank tab, which took
 * half of each check's time (panel-axe-sweep: 46 s → 21 s of axe per screen size). What it gives
 * up is testing cross-origin frames: the panel has no frames, and its CSP (default-src 'self')
 * loads none from another origin. The sweep's probe proves a violation is still caught.
 */
export async function axeProblems(page: Page, where: string): Promise<string[]> {
  const result = await new AxeBuilder({ page })
    .options({ rules: { 'label-content-name-mismatch': { enabled: true } } })
    .setLegacyMode(true)
    .analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${where}: ${v.id} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}
