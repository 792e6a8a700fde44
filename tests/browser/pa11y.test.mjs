// A second accessibility engine: pa11y with HTML_CodeSniffer, standard WCAG2AA, on Debian's
// Chromium (puppeteer's own browser is never downloaded: PUPPETEER_SKIP_DOWNLOAD=1 at install).
// HTML_CodeSniffer reads the markup differently from axe: it found the login form's
// `autocomplete="username"` on a `type="email"` input, which axe and the Nu checker let through.
// Zero errors on every page that `a11y` audits, plus the account forms (log in, sign up, forgotten
// password), which the sitemap does not list. Warnings and notices are HTML_CodeSniffer's
// « check by hand » items: not counted, since they are no failures. The signed-in pages and the
// answers to forms are checked by the same HTML_CodeSniffer build in the `accounts` walk
// (`pa11y:` subtests, support.mjs's htmlcsErrors), where pa11y cannot follow the session.
import { after, before, describe, test } from 'node:test';
import pa11y from 'pa11y';
import puppeteer from 'puppeteer';
import { CHROMIUM, HTMLCS_NOT_APPLICABLE, check, pages, skip, url } from './support.mjs';

// The forms a visitor reaches from the header, beyond the sitemap's pages.
const ACCOUNT_FORMS = ['/compte/connexion', '/compte/inscription', '/compte/mot-de-passe-oublie'];


const list = [...(await pages())];
for (const path of ACCOUNT_FORMS) if (!list.some((p) => p.path === path)) list.push({ path, expect: 200 });

describe('accessibility, second engine (pa11y, HTML_CodeSniffer, WCAG2AA)', () => {
  let browser;
  before(async () => {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => { await browser?.close(); });

  for (const entry of list) {
    test(`pa11y ${entry.path}`, { timeout: 90_000 }, async (t) => {
      const status = (await fetch(url(entry.path), { redirect: 'manual' })).status;
      if (status === 404 && entry.expect === 200) {
        skip(t, `${entry.path} answers 404 (not served by the portal yet)`);
        return;
      }
      check(status === entry.expect, `${entry.path}: answers HTTP ${status}, expected ${entry.expect}`);
      const page = await browser.newPage();
      try {
        await page.setViewport({ width: 1280, height: 800 });
        const result = await pa11y(url(entry.path), {
          browser,
          page,
          standard: 'WCAG2AA',
          runners: ['htmlcs'],
          includeWarnings: false,
          includeNotices: false,
          ignore: [...HTMLCS_NOT_APPLICABLE.keys()],
          timeout: 60_000,
          log: { debug() {}, error: console.error, info() {} },
        });
        const errors = result.issues.filter((i) => i.type === 'error');
        console.log(`pa11y ${entry.path}: ${errors.length} error(s)`);
        check(errors.length === 0, () => `${entry.path}: ${errors.length} pa11y error(s):\n` + errors
          .map((i) => `  ${i.code}\n    ${i.message}\n    at ${i.selector}: ${i.context.slice(0, 160)}`)
          .join('\n'));
      } finally {
        await page.close();
      }
    });
  }
});
