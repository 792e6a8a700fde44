// The back office, walked in a real browser by a staff member signed in with the second factor:
// `nanoclip create-staff` prints the password and the enrolment link; the walk opens it, reads the
// key shown for typing by hand, computes the TOTP code (RFC 6238: HMAC-SHA1, 30 s, 6 digits) and
// enrols, which signs it in past the second factor. It then opens an organisation for a church
// through the back office, sends an event raise request through /contact as its future owner, and
// audits every page of ADMIN_PAGES (admin-pages.mjs) and the forms' error states: axe-core (WCAG
// 2.2 A/AA, colour contrast in dark mode too), a 360 px phone (no horizontal scroll, axe), and the
// W3C Nu checker (no error).
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { createHmac } from 'node:crypto';
import { AXE_TAGS, CSS_PATH_FN, Failure, OVERFLOW_FN, check, describeViolations, launch, url } from './support.mjs';
import { nanoclip, parisDay } from './operator.mjs';
import { checkHtml } from './vnu.mjs';
import { ADMIN_PAGES } from './admin-pages.mjs';

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const STAFF = `equipe-${RUN}@nanoclip.fr`;
const OWNER = `proprietaire-bo-${RUN}@exemple.fr`;
const ORGANISATION = `Paroisse du back-office ${RUN}`;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const STEP = { timeout: 180_000 };

const pathOf = (page) => { const u = new URL(page.url()); return u.pathname + u.search; };

/** The TOTP code of a base32 secret at `at` (ms): RFC 6238 with SHA-1, 30 s steps, 6 digits. */
export function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Failure(`not a base32 key: ${secret}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}

/** Clicks a submit button and waits for the page it leads to; returns its HTTP status. */
async function submit(page, button) {
  check(await button.count() === 1, `${pathOf(page)}: no such button (${button})`);
  const [res] = await Promise.all([page.waitForNavigation({ timeout: 30_000 }), button.click()]);
  return res?.status() ?? 0;
}

async function fill(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const field = form.locator(`[name="${name}"]`);
    check(await field.count() === 1, `${pathOf(form.page())}: ${await field.count()} field(s) named ${name}, expected 1`);
    if (await field.evaluate((el) => el.tagName === 'SELECT')) await field.selectOption(value);
    else await field.fill(value);
  }
}

describe('staff: the back office, signed in with the second factor', () => {
  let browser, staff, phone, page;
  const ctx = { run: RUN };
  const seen = []; // { label, html } of every page audited
  before(async () => {
    browser = await launch();
    staff = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
    phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    page = await staff.newPage();
  });
  after(async () => { await browser?.close(); });

  /** axe (light, dark contrast) on the page, then at 360 px: reopened on the phone with the same
   * cookies (GET pages), or this page resized (the answer to a POST, `reopen: false`). */
  async function audit(t, label, { status = 200, reopen = true } = {}) {
    const at = pathOf(page);
    const where = `${label} (${new URL(page.url()).pathname})`;
    // A kept-alive connection the server closes just as it is reused (« socket hang up » on a
    // loaded machine) is retried once, as a browser does for a GET.
    const get = () => staff.request.get(url(at), { maxRedirects: 0 });
    const html = reopen
      ? await (await get().catch((e) => { if (/socket hang up|ECONNRESET|EPIPE/.test(String(e))) return get(); throw e; })).text()
      : await page.content();
    seen.push({ label: where, html });
    await t.test(`axe: ${label}`, async () => {
      const problems = [];
      const light = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
      if (light.violations.length) problems.push(describeViolations(where, 'light', light.violations));
      await page.emulateMedia({ colorScheme: 'dark' });
      try {
        const dark = await new AxeBuilder({ page }).withRules(['color-contrast']).analyze();
        if (dark.violations.length) problems.push(describeViolations(where, 'dark', dark.violations));
      } finally {
        await page.emulateMedia({ colorScheme: 'light' });
      }
      check(problems.length === 0, problems.join('\n'));
    });
    await t.test(`360 px: ${label}`, async () => {
      let target = page;
      if (reopen) {
        await phone.clearCookies();
        await phone.addCookies(await staff.cookies());
        target = await phone.newPage();
        const res = await target.goto(url(at), { waitUntil: 'load', timeout: 30_000 });
        check(res?.status() === status && pathOf(target) === at,
          `${where} at 360 px: reopening ${at} answered ${res?.status()} at ${pathOf(target)}, expected ${status}`);
      } else {
        await page.setViewportSize(PHONE);
      }
      try {
        const problems = [];
        const m = await target.evaluate(`(${OVERFLOW_FN})(${JSON.stringify({ width: PHONE.width, cssPath: CSS_PATH_FN })})`);
        if (m.scrollWidth > PHONE.width) {
          problems.push(`${where}: the page is ${m.scrollWidth} px wide at ${PHONE.width} px (horizontal scroll)` +
            (m.wide.length ? `; sticking out:\n  ${m.wide.join('\n  ')}` : ''));
        }
        const r = await new AxeBuilder({ page: target }).withTags(AXE_TAGS).analyze();
        if (r.violations.length) problems.push(describeViolations(where, '360 px', r.violations));
        check(problems.length === 0, problems.join('\n'));
      } finally {
        if (reopen) await target.close();
        else await page.setViewportSize(DESKTOP);
      }
    });
  }

  async function go(path, status = 200) {
    const res = await page.goto(url(path), { waitUntil: 'load', timeout: 30_000 });
    check(res?.status() === status && pathOf(page) === path,
      `${path} answered ${res?.status()} at ${pathOf(page)}, expected ${status}`);
  }

  test('create-staff, the enrolment link, the TOTP code: signed in past the second factor', STEP, async (t) => {
    const out = await nanoclip(['create-staff', '--email', STAFF]);
    const password = /password \(shown once\): (.+)/.exec(out)?.[1];
    const link = /second factor link[^:]*: (\S+)/.exec(out)?.[1];
    check(password && link, `create-staff printed no password or link:\n${out}`);
    const enrol = new URL(link);
    await go(enrol.pathname + enrol.search);
    await audit(t, 'second factor enrolment');
    const secret = (await page.locator('#cle').innerText()).replace(/\s+/g, '');
    const form = page.locator('form[action="/compte/second-facteur/inscription"]');
    await fill(form, { mot_de_passe: password, code: totp(secret) });
    const status = await submit(page, form.getByRole('button', { name: 'Activer le second facteur' }));
    check(status === 200, `enrolment answered ${status}`);
    check(await page.locator('#codes-de-secours li').count() === 10, 'no ten recovery codes shown');
    await go('/admin');
    ctx.staff = true;
  });

  test('an organisation opened through the back office, an event request through /contact', STEP, async (t) => {
    check(ctx.staff, 'not signed in as staff (an earlier step failed)');
    await go('/admin/organisations/nouvelle');
    const form = page.locator('form[action="/admin/organisations/nouvelle"]');
    // Sent with errors: 400, the summary and the values kept.
    await fill(form, { nom: 'X', email: 'pas-une-adresse', motif: '' });
    let status = await submit(page, form.getByRole('button'));
    check(status === 400, `the opening form with errors answered ${status}, expected 400`);
    check(await page.locator('#erreurs[role=alert]').count() === 1, 'no error summary');
    await audit(t, 'admin new organisation (errors)', { reopen: false });
    await fill(form, { nom: ORGANISATION, plan: 'eglise', email: OWNER, motif: 'Accompagnement du diocèse' });
    status = await submit(page, form.getByRole('button'));
    check(status === 200 && /\/admin\/organisations\/[0-9a-f-]{36}\?avis=ouverte$/.test(pathOf(page)),
      `opening answered ${status} at ${pathOf(page)}`);
    ctx.organisation = /organisations\/([0-9a-f-]{36})/.exec(pathOf(page))[1];
    // A ledger longer than a page of the file (20 lines): adjustments through the back office.
    const adjust = page.locator(`form[action="/admin/organisations/${ctx.organisation}/credits"]`);
    for (let i = 0; i < 21; i += 1) {
      await fill(adjust, { credits: '1', motif: `Geste ${i + 1}` });
      status = await submit(page, adjust.getByRole('button'));
      check(status === 200 && pathOf(page).endsWith('?avis=ajuste'), `adjustment ${i + 1} answered ${status} at ${pathOf(page)}`);
    }
    // The event request, from a visitor's browser.
    const visitor = await browser.newContext({ viewport: DESKTOP });
    try {
      const p = await visitor.newPage();
      await p.goto(url('/contact?sujet=evenement'));
      const contact = p.locator('form[action="/contact"]');
      await fill(contact, {
        nom: 'Père Martin', email: OWNER, organisation: ORGANISATION, sujet: 'evenement',
        date_debut: parisDay(30), date_fin: parisDay(32), volume: '40 vidéos et 120 images',
        message: 'Nous préparons un rassemblement diocésain et aurons besoin de plus de rendus.',
      });
      for (let i = 0; i < 2 && !new URL(p.url()).pathname.endsWith('/contact/merci'); i += 1) {
        await submit(p, p.locator('form[action="/contact"] button[type=submit]'));
      }
      check(new URL(p.url()).pathname.endsWith('/contact/merci'), `the contact form did not lead to /contact/merci (at ${p.url()})`);
    } finally {
      await visitor.close();
    }
    await go('/admin/messages');
    const card = page.locator('article', { hasText: OWNER }).first();
    const id = /^message-(\d+)$/.exec(await card.getAttribute('id') ?? '')?.[1];
    check(id, `/admin/messages lists no message from ${OWNER}`);
    ctx.message = id;
  });

  test('every back-office page: axe, 360 px', STEP, async (t) => {
    check(ctx.organisation && ctx.message, 'an earlier step failed (no organisation or message)');
    for (const entry of ADMIN_PAGES) {
      const path = entry.path(ctx);
      await go(path, entry.status ?? 200);
      await audit(t, entry.label, { status: entry.status ?? 200 });
    }
  });

  test('the forms sent with errors: axe, 360 px', STEP, async (t) => {
    check(ctx.organisation && ctx.message, 'an earlier step failed (no organisation or message)');
    // A raise that ends before it starts.
    await go(`/admin/organisations/${ctx.organisation}/limites?message=${ctx.message}`);
    const raise = page.locator(`form[action="/admin/organisations/${ctx.organisation}/limites"]`);
    await fill(raise, { debut: parisDay(32), fin: parisDay(30), motif: 'Rassemblement' });
    let status = await submit(page, raise.getByRole('button'));
    check(status === 400 && (await page.locator('[role=alert]').innerText()).includes('commencer avant de finir'),
      `a raise ending before it starts answered ${status}`);
    await audit(t, 'admin raise (ends before it starts)', { reopen: false });
    // Granted, then the file with its notice.
    await fill(raise, { debut: parisDay(30), fin: parisDay(32), motif: 'Rassemblement diocésain' });
    status = await submit(page, raise.getByRole('button'));
    check(status === 200 && pathOf(page).endsWith('?avis=hausse'), `granting the raise answered ${status} at ${pathOf(page)}`);
    await audit(t, 'admin organisation (raise granted)');
    // A suspension without reason, then with one, then the reactivation.
    const suspension = page.locator(`form[action="/admin/organisations/${ctx.organisation}/suspension"]`);
    await fill(suspension, { motif: '' });
    status = await submit(page, suspension.getByRole('button'));
    check(status === 400, `a suspension without reason answered ${status}`);
    await audit(t, 'admin organisation (suspension without reason)', { reopen: false });
    await fill(suspension, { motif: 'Essai du back-office' });
    status = await submit(page, suspension.getByRole('button'));
    check(status === 200 && pathOf(page).endsWith('?avis=suspendue'), `suspending answered ${status} at ${pathOf(page)}`);
    await audit(t, 'admin organisation (suspended)');
    const reactivation = page.locator(`form[action="/admin/organisations/${ctx.organisation}/reactivation"]`);
    await fill(reactivation, { motif: 'Fin de l’essai' });
    status = await submit(page, reactivation.getByRole('button'));
    check(status === 200 && pathOf(page).endsWith('?avis=reactivee'), `reactivating answered ${status} at ${pathOf(page)}`);
    // The message marked answered: without reason (400), then with one.
    await go('/admin/messages');
    const answer = page.locator(`form[action="/admin/messages/${ctx.message}/reponse"]`);
    await fill(answer, { motif: '' });
    status = await submit(page, answer.getByRole('button'));
    check(status === 400, `marking answered without reason answered ${status}`);
    await audit(t, 'admin messages (answer without reason)', { reopen: false });
    await fill(page.locator(`form[action="/admin/messages/${ctx.message}/reponse"]`), { motif: 'Hausse accordée' });
    status = await submit(page, page.locator(`form[action="/admin/messages/${ctx.message}/reponse"]`).getByRole('button'));
    check(status === 200 && pathOf(page) === '/admin/messages?avis=repondu', `marking answered answered ${status} at ${pathOf(page)}`);
    await audit(t, 'admin messages (answered)');
    // Prices: a version dated in the past, a pack with bad values (nothing is published).
    await go('/admin/tarifs');
    const version = page.locator('form[action="/admin/tarifs"]');
    await fill(version, { date: '2000-01-01', 'regle-0': '0', motif: '' });
    status = await submit(page, version.getByRole('button'));
    check(status === 400, `a price version dated in the past answered ${status}`);
    await audit(t, 'admin prices (version in the past)', { reopen: false });
    await go('/admin/tarifs');
    await page.locator('#pack-pack-10 summary').click(); // the form is folded in <details>
    const pack = page.locator('form[action="/admin/packs/pack-10"]');
    await fill(pack, { nom: '', credits: '0', prix: 'x', motif: '' });
    status = await submit(page, pack.getByRole('button').first());
    check(status === 400, `a pack with bad values answered ${status}`);
    await audit(t, 'admin prices (pack with bad values)', { reopen: false });
    // Operations: check-ledger without reason.
    await go('/admin/operations');
    const ledger = page.locator('form[action="/admin/operations/grand-livre"]');
    await fill(ledger, { motif: '' });
    status = await submit(page, ledger.getByRole('button'));
    check(status === 400, `check-ledger without reason answered ${status}`);
    await audit(t, 'admin operations (check-ledger without reason)', { reopen: false });
  });

  test('HTML of every back-office page met: W3C Nu checker, no error', STEP, async (t) => {
    check(seen.length > 0, 'no back-office page was reached');
    const { controlErrors, errors } = await checkHtml(seen.map((p) => p.html));
    check(controlErrors > 0, 'vnu found no error in the control page: its 0 would mean nothing');
    for (const [i, p] of seen.entries()) {
      await t.test(`html: ${p.label}`, () => {
        check(errors[i].length === 0, () => `${p.label}: ${errors[i].length} HTML error(s)\n${errors[i].describe}`);
      });
    }
  });
});
