// Accessibility of every page: axe-core with the WCAG 2.2 A/AA rules (zero violations), colour
// contrast again in dark mode (the stylesheet has a dark palette), and <html lang="fr">.
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { check, launch, open, pages } from './support.mjs';

const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

function describeViolations(path, mode, violations) {
  const lines = [`${path} (${mode}): ${violations.length} axe violation(s)`];
  for (const v of violations) {
    lines.push(`  - ${v.id} [${v.impact}] ${v.help} (${v.helpUrl})`);
    const targets = v.nodes.slice(0, 3).map((n) => n.target.join(' '));
    for (const target of targets) lines.push(`      at ${target}`);
    if (v.nodes.length > 3) lines.push(`      … and ${v.nodes.length - 3} more`);
    const summary = v.nodes[0]?.failureSummary?.split('\n').slice(0, 3).join(' / ');
    if (summary) lines.push(`      ${summary}`);
  }
  return lines.join('\n');
}

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
          const r = await new AxeBuilder({ page }).withTags(TAGS).analyze();
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
