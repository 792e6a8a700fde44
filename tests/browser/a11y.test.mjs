// Accessibility of every page: axe-core with the WCAG 2.2 A/AA rules (zero violations), colour
// contrast again in dark mode (the stylesheet has a dark palette), and <html lang="fr">.
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { AXE_TAGS, check, describeViolations, launch, open, pages } from './support.mjs';

const list = await pages();

describe('accessibility (axe-core WCAG 2.2 A/AA, lang="fr")', () => {
  let browser, context;
  before(async () => {
    browser = await launch();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  });
  after(async () => { await browser?.close(); });

  for (const entry of list) {
    test(`a11y ${entry.path}`, { timeout: 90_000 }, async (t) => {
      const page = await context.newPage(); // AxeBuilder needs a page from a context
      try {
        if (!(await open(t, page, entry))) return;

        await t.test('<html lang="fr">', async () => {
          const lang = await page.evaluate(() => document.documentElement.getAttribute('lang'));
          check(lang === 'fr', `${entry.path}: ${lang === null ? '<html> has no lang attribute' : `<html lang="${lang}">`}, expected <html lang="fr">`);
        });

        await t.test('axe: zero violations (light)', async () => {
          const r = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
          check(r.violations.length === 0, () => describeViolations(entry.path, 'light', r.violations));
        });

        await t.test('axe: colour contrast (dark mode)', async () => {
          await page.emulateMedia({ colorScheme: 'dark' });
          try {
            const r = await new AxeBuilder({ page }).withRules(['color-contrast']).analyze();
            check(r.violations.length === 0, () => describeViolations(entry.path, 'dark', r.violations));
          } finally {
            await page.emulateMedia({ colorScheme: 'light' });
          }
        });
      } finally {
        await page.close();
      }
    });
  }
});
