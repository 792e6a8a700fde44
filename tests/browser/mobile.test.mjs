// A phone 360 px wide (360×740, mobile viewport meta honoured): no horizontal scroll on any page,
// body text at least 16 px, and axe-core again at that width.
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { AXE_TAGS, CSS_PATH_FN, check, describeViolations, launch, open, pages } from './support.mjs';

const WIDTH = 360;
const list = await pages();

describe('mobile 360×740', () => {
  let browser, context;
  before(async () => {
    browser = await launch();
    context = await browser.newContext({
      viewport: { width: WIDTH, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
    });
  });
  after(async () => { await browser?.close(); });

  for (const entry of list) {
    test(`mobile ${entry.path}`, { timeout: 90_000 }, async (t) => {
      const page = await context.newPage();
      try {
        if (!(await open(t, page, entry))) return;
        const m = await page.evaluate(({ width, cssPath }) => {
          const path = eval(cssPath); // eslint-disable-line no-eval
          const doc = document.documentElement;
          // The outermost elements sticking out to the right, for the failure message.
          const wide = [];
          for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.right > width + 0.5 && r.width > 0) {
              let p = el.parentElement, nested = false;
              while (p && p !== document.body) {
                if (p.getBoundingClientRect().right > width + 0.5) { nested = true; break; }
                p = p.parentElement;
              }
              if (!nested) wide.push(`${path(el)} (right edge ${Math.round(r.right)} px)`);
            }
          }
          return {
            scrollWidth: doc.scrollWidth,
            viewportMeta: document.querySelector('meta[name="viewport"]')?.getAttribute('content') ?? null,
            clientWidth: doc.clientWidth,
            bodyFont: parseFloat(getComputedStyle(document.body).fontSize),
            wide: wide.slice(0, 5),
          };
        }, { width: WIDTH, cssPath: CSS_PATH_FN });

        await t.test('no horizontal scroll', () => {
          check(m.scrollWidth <= WIDTH, () =>
            `${entry.path}: the page is ${m.scrollWidth} px wide at a ${WIDTH} px viewport (horizontal scroll)` +
            (m.viewportMeta === null ? '; the page has no <meta name="viewport" content="width=device-width, initial-scale=1">' : '') +
            (m.wide.length ? `; the outermost elements sticking out:\n  ${m.wide.join('\n  ')}` : ''));
        });
        await t.test('body text ≥ 16 px', () => {
          check(m.bodyFont >= 16, `${entry.path}: body font-size is ${m.bodyFont} px, expected ≥ 16 px`);
        });
        // What only a narrow screen shows: tables that scroll, targets that shrink, wrapped text.
        await t.test('axe at 360 px: zero violations', async () => {
          const r = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
          check(r.violations.length === 0, () => describeViolations(entry.path, '360 px', r.violations));
        });
      } finally {
        await page.close();
      }
    });
  }
});
