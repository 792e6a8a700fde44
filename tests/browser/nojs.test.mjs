// JavaScript off: the simulator is a plain server-side form. Every field is there and visible,
// submitting it leads to a shareable GET URL carrying the parameters, and the answer shows a result.
import { after, before, describe, test } from 'node:test';
import { check, launch, open } from './support.mjs';

// The simulator's parameters (PRODUCT.md, URL map).
const FIELDS = ['type', 'duree', 'format', 'resolution', 'pages', 'illustrations', 'quantite', 'plan', 'prompt'];
const FORM = 'form:has([name="type"])';
const RESULT = '[data-testid=resultat], .resultat';

/** Sets a field whatever its control: select, radio group, or text/number input. */
async function setField(form, name, value) {
  const el = form.locator(`[name="${name}"]`).first();
  const kind = await el.evaluate((e) => (e.localName === 'select' ? 'select' : e.type));
  if (kind === 'select') await el.selectOption(value);
  else if (kind === 'radio' || kind === 'checkbox') await form.locator(`[name="${name}"][value="${value}"]`).check();
  else await el.fill(value);
}

describe('JavaScript off', () => {
  let browser, context;
  before(async () => {
    browser = await launch();
    context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
  });
  after(async () => { await browser?.close(); });

  test('simulator: a plain GET form that answers with a result', async (t) => {
    const page = await context.newPage();
    try {
      if (!(await open(t, page, { path: '/simulateur', expect: 200 }))) return;
      const form = page.locator(FORM).first();
      check(await form.count() === 1, '/simulateur: no <form> with a field named "type"');

      const method = ((await form.getAttribute('method')) || 'get').toLowerCase();
      check(method === 'get', `/simulateur: the form's method is ${method}; the answer must be a shareable GET URL`);

      const problems = [];
      for (const name of FIELDS) {
        const controls = form.locator(`[name="${name}"]`);
        const n = await controls.count();
        if (n === 0) { problems.push(`${name}: missing`); continue; }
        let visible = false;
        for (let i = 0; i < n && !visible; i++) visible = await controls.nth(i).isVisible();
        if (!visible) problems.push(`${name}: present but hidden without JavaScript`);
      }
      check(problems.length === 0, `/simulateur without JavaScript, fields: ${problems.join('; ')}`);

      await setField(form, 'type', 'video');
      await setField(form, 'duree', '10');
      await setField(form, 'quantite', '3');
      const submit = form.locator('button:not([type]), button[type=submit], input[type=submit]').first();
      check(await submit.count() === 1, '/simulateur: the form has no submit button');
      const [res] = await Promise.all([page.waitForNavigation({ timeout: 15_000 }), submit.click()]);

      const u = new URL(page.url());
      check(u.pathname === '/simulateur', `after submitting: went to ${u.pathname}, expected /simulateur`);
      for (const [k, v] of [['type', 'video'], ['duree', '10'], ['quantite', '3']]) {
        check(u.searchParams.get(k) === v, `after submitting: the URL ${u.pathname}${u.search} has ${k}=${u.searchParams.get(k)}, expected ${v}`);
      }
      const status = res?.status();
      const errors = (await page.locator('.field-error, .notice.error, [aria-invalid="true"]').allInnerTexts()).filter(Boolean);
      check(status === 200, `after submitting: ${u.pathname}${u.search} answers ${status}` +
        (errors.length ? `; errors shown: ${errors.join(' | ')}` : ''));
      const result = page.locator(RESULT).first();
      check(await result.count() > 0 && await result.isVisible(),
        `after submitting: no visible result (${RESULT}) on ${u.pathname}${u.search}` +
        (errors.length ? `; errors shown: ${errors.join(' | ')}` : ''));
    } finally {
      await page.close();
    }
  });
});
