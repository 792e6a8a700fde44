// Keyboard: on the home page the first Tab reaches a visible « Aller au contenu » skip link, with a
// visible focus indicator, and Enter moves the focus to the main content (#contenu). Every other
// page served has the same skip link pointing to an element that exists.
import { after, before, describe, test } from 'node:test';
import { check, launch, open, pages } from './support.mjs';

const VIEWPORT = { width: 1280, height: 800 };
const list = await pages();

describe('keyboard', () => {
  let browser, context;
  before(async () => {
    browser = await launch();
    context = await browser.newContext({ viewport: VIEWPORT });
  });
  after(async () => { await browser?.close(); });

  test('home: first Tab focuses the visible skip link, Enter moves focus to #contenu', async (t) => {
    const page = await context.newPage();
    try {
      if (!(await open(t, page, { path: '/', expect: 200 }))) return;
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const r = el.getBoundingClientRect();
        const cs = getComputedStyle(el);
        return {
          tag: el.localName, cls: el.className, text: (el.textContent || '').trim(), href: el.getAttribute('href'),
          rect: { x: r.x, y: r.y, w: r.width, h: r.height },
          visibility: cs.visibility, opacity: cs.opacity, outline: `${cs.outlineStyle} ${cs.outlineWidth}`,
          boxShadow: cs.boxShadow, isSkip: el.matches('a.skip-link'),
        };
      });
      check(focused, '/: the first Tab focuses nothing (document.activeElement is <body>)');
      check(focused.isSkip,
        `/: the first Tab focuses <${focused.tag} class="${focused.cls}"> « ${focused.text} », expected a.skip-link`);
      check(focused.text === 'Aller au contenu', `/: the skip link reads « ${focused.text} »`);
      const { x, y, w, h } = focused.rect;
      const onScreen = w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= VIEWPORT.width && y + h <= VIEWPORT.height;
      check(onScreen && focused.visibility === 'visible' && Number(focused.opacity) > 0,
        `/: the focused skip link is not visible on screen (box ${JSON.stringify(focused.rect)}, ` +
        `visibility ${focused.visibility}, opacity ${focused.opacity}); it must appear when focused`);
      check(!focused.outline.startsWith('none') || focused.boxShadow !== 'none',
        `/: the focused skip link has no focus indicator (outline ${focused.outline}, box-shadow ${focused.boxShadow})`);
      check(focused.href === '#contenu', `/: the skip link points to ${focused.href}, expected #contenu`);

      await page.keyboard.press('Enter');
      await page.waitForFunction(() => location.hash === '#contenu', null, { timeout: 5_000 }).catch(() => {});
      const after = await page.evaluate(() => ({
        hash: location.hash,
        id: document.activeElement?.id || '',
        tag: document.activeElement?.localName,
      }));
      check(after.id === 'contenu',
        `/: after Enter on the skip link the focus is on <${after.tag}${after.id ? '#' + after.id : ''}> ` +
        `(URL hash « ${after.hash} »), expected #contenu (the <main> needs id="contenu" and tabindex="-1")`);

      // The next Tab continues from the main content (or after it), not back in the header.
      await page.keyboard.press('Tab');
      const next = await page.evaluate(() => {
        const main = document.getElementById('contenu');
        const atOrAfter = (el) => el === main || main.contains(el) ||
          !!(main.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
        const focusable = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])')]
          .filter((e) => !e.disabled && e.getClientRects().length > 0 && atOrAfter(e));
        const el = document.activeElement;
        return {
          ok: focusable.length === 0 || (el && el !== document.body && atOrAfter(el)),
          what: `<${el?.localName}> « ${(el?.textContent || '').trim().slice(0, 40)} »`,
        };
      });
      check(next.ok, `/: after the skip link, Tab goes back to ${next.what} before #contenu`);
    } finally {
      await page.close();
    }
  });

  for (const entry of list.filter((p) => p.path !== '/')) {
    test(`skip link ${entry.path}`, async (t) => {
      const page = await context.newPage();
      try {
        if (!(await open(t, page, entry))) return;
        const r = await page.evaluate(() => {
          const a = document.querySelector('a.skip-link');
          const first = document.querySelector('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])');
          const target = a && document.getElementById((a.getAttribute('href') || '').replace(/^#/, ''));
          return { has: !!a, text: a?.textContent.trim(), first: first === a, target: !!target, tabindex: target?.getAttribute('tabindex') };
        });
        check(r.has, `${entry.path}: no a.skip-link`);
        check(r.text === 'Aller au contenu', `${entry.path}: the skip link reads « ${r.text} »`);
        check(r.first, `${entry.path}: the skip link is not the first focusable element`);
        check(r.target, `${entry.path}: the skip link's target does not exist`);
      } finally {
        await page.close();
      }
    });
  }
});
