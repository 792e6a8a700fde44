// Accounts, walked in a real browser the way a church's staff would: sign up, open the activation
// e-mail, see the address on /compte, log out, log in, forget the password, follow the reset e-mail,
// log in with the new password, invite a member, and the member opens the invitation in another
// browser and lands on /compte. The e-mails are the .eml files the portal writes in development
// (mail.mjs). Then the owner's dashboard and credit history, once the operator has given the
// organisation a history (`nanoclip credits adjust`, operator.mjs): low balance, credits about to
// expire, two pages of movements. Then generations launched from /generations (a success the test
// engine reports, refusals, a wrong field, a failure) and « Je pense que c’est une erreur » to the
// prefilled contact form; a second owner signs up on Plan Réseau to create, use and revoke an API
// key on /compte/api, which the Plan Église owner is told is Plan Réseau's. The Plan Église owner
// buys a pack through the built-in test provider (approved, then declined), opens the invoice and
// moves to Plan Réseau; the Plan Réseau owner previews, schedules and cancels a downgrade. Every page met on the
// way goes through axe-core (WCAG 2.2 A/AA, colour contrast in dark mode too), again on a 360 px
// phone (no horizontal scroll, axe), the W3C Nu checker and the shared typography checker's rules.
// The login form, the dashboard, the history's filters, the launch form and the API keys' forms are
// also used with JavaScript off; the credit pages, /generations and /compte/api are walked by
// keyboard, and the shared typography checker crawls the portal signed in as each owner.
//
// The steps depend on each other: when one fails, the next ones are reported as skipped with the
// reason. Addresses are unique per run (the development database persists).
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { AXE_TAGS, BASE, CSS_PATH_FN, Failure, OVERFLOW_FN, check, describeViolations, htmlcsErrors, launch, open, skip, tabWalk, url } from './support.mjs';
import { MAIL_DIR, waitForLink } from './mail.mjs';
import { adjust, parisDay, runJob } from './operator.mjs';
import { checkHtml } from './vnu.mjs';

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const OWNER = `proprietaire-${RUN}@exemple.fr`;
const MEMBER = `membre-${RUN}@exemple.fr`;
const ORGANISATION = `Église d’essai ${RUN}`;
// Long phrases, none of them made of the organisation's name, the address or church words.
const PASSWORD = 'cloche verte sous la pluie 7';
const NEW_PASSWORD = 'lanterne bleue au fond du jardin 42';
const MEMBER_PASSWORD = 'violon doux du matin clair 3';
// A second organisation, on Plan Réseau (the API's plan), signed up the same way.
const RESEAU_OWNER = `reseau-${RUN}@exemple.fr`;
const RESEAU = `Réseau d’essai ${RUN}`;
const RESEAU_PASSWORD = 'phare blanc sur la colline 9';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const STEP = { timeout: 120_000 };

/** What the flow has reached; a step needing something missing is skipped. */
const flow = {};
function needs(t, ...keys) {
  const missing = keys.filter((k) => !flow[k]);
  if (missing.length) skip(t, `an earlier step failed (no ${missing.join(', ')})`);
  return missing.length === 0;
}

const pathOf = (page) => { const u = new URL(page.url()); return u.pathname + u.search; };

/** The messages the page shows (errors, notices), for failure messages. */
async function shown(page) {
  const texts = await page.locator('.field-error, .notice, [role=alert], [role=status], h1')
    .allInnerTexts().catch(() => []);
  const t = texts.map((s) => s.replace(/\s+/g, ' ').trim()).filter(Boolean);
  return t.length ? `; the page shows: ${t.map((s) => `« ${s.slice(0, 160)} »`).join(' ')}` : '';
}

/** Clicks a submit button and waits for the page it leads to; returns its HTTP status. */
async function submit(page, button) {
  const from = pathOf(page);
  check(await button.count() === 1, `${from}: no such button (${button})`);
  const [res] = await Promise.all([page.waitForNavigation({ timeout: 30_000 }), button.click()]);
  const status = res?.status() ?? 0;
  if (status === 429) {
    throw new Failure(`${from}: submitting answered 429 Too Many Requests (Retry-After ${res.headers()['retry-after']} s): ` +
      'the portal throttles logins per client address; wait and run again');
  }
  return status;
}

/** Fails unless the page is at `expected` (a path, with or without a query) with `status`. */
async function expectAt(page, status, expectedStatus, expected, what) {
  const at = pathOf(page);
  const ok = expected.includes('?') ? at === expected : new URL(page.url()).pathname === expected;
  check(ok && status === expectedStatus,
    `${what}: landed on ${at} (HTTP ${status}), expected ${expected} (HTTP ${expectedStatus})${await shown(page)}`);
}

/** Fills a form's fields by name. */
async function fill(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const field = form.locator(`[name="${name}"]`);
    check(await field.count() === 1, `${pathOf(form.page())}: the form has ${await field.count()} field(s) named ${name}, expected 1`);
    await field.fill(value);
  }
}

/** The text of every element matching `sel`: spaces and line breaks of the markup as one space,
 * no-break spaces kept (French typography is checked too). */
async function textOf(page, sel) {
  return (await page.locator(sel).allInnerTexts()).join(' ').replace(/[ \t\r\n]+/g, ' ').trim();
}

/** Runs a program (poppler's tools); its standard output, or a failure naming it. */
function run(program, args) {
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Failure(`${program} ${args.join(' ')} failed (${error.code ?? error.signal}; poppler-utils is installed by scripts/test): ${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * The share of dark pixels in an 8-bit RGB or grey PNG (what pdftoppm writes): the IDAT data
 * inflated, each row unfiltered (PNG's five filters), then pixels darker than mid-grey counted.
 */
function darkShare(png) {
  check(png.subarray(1, 4).toString('latin1') === 'PNG', 'pdftoppm wrote no PNG');
  let width = 0; let height = 0; let channels = 0; const idat = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      check(data[8] === 8, `PNG bit depth ${data[8]}, expected 8`);
      channels = { 0: 1, 2: 3, 6: 4 }[data[9]];
      check(channels, `PNG colour type ${data[9]} not read here`);
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  let previous = Buffer.alloc(stride); let dark = 0;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0; const b = previous[i]; const c = i >= channels ? previous[i - channels] : 0;
      const p = a + b - c; const pa = Math.abs(p - a); const pb = Math.abs(p - b); const pc = Math.abs(p - c);
      const predictor = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      row[i] = (row[i] + predictor) & 0xff;
    }
    for (let x = 0; x < width; x++) if (row[x * channels] < 128) dark++;
    previous = row;
  }
  return { width, height, share: dark / (width * height) };
}

/**
 * The invoice's PDF, downloaded from its page's link as a reader would: its name, poppler's
 * rendering of page 1 (a PNG with text on it, not a blank page) and its text (the number and the
 * totals; poppler turns no-break spaces into plain ones).
 */
async function checkInvoicePdf(t, page, invoice, totals) {
  const number = invoice.split('/').pop();
  const link = page.locator('a#pdf');
  check(await link.count() === 1, `${invoice}: no link to the PDF (a#pdf)`);
  check(await link.getAttribute('href') === `${invoice}.pdf`, `${invoice}: the PDF link leads to ${await link.getAttribute('href')}`);
  check(await link.innerText() === 'Télécharger la facture en PDF', `${invoice}: the PDF link reads « ${await link.innerText()} »`);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), link.click()]);
  check(download.suggestedFilename() === `${number}.pdf`, `the PDF downloads as « ${download.suggestedFilename()} », expected « ${number}.pdf »`);
  const dir = mkdtempSync(path.join(tmpdir(), 'nanoclip-facture-'));
  try {
    const file = path.join(dir, `${number}.pdf`);
    await download.saveAs(file);
    const bytes = readFileSync(file);
    check(bytes.subarray(0, 5).toString('latin1') === '%PDF-', `${number}.pdf does not start with %PDF- (« ${bytes.subarray(0, 16).toString('latin1')} »)`);
    await run('pdftoppm', ['-png', '-r', '72', '-f', '1', '-l', '1', '-singlefile', file, path.join(dir, 'page-1')]);
    const png = path.join(dir, 'page-1.png');
    check(existsSync(png), `pdftoppm made no PNG of ${number}.pdf`);
    const size = statSync(png).size;
    const { width, height, share } = darkShare(readFileSync(png));
    check(width === 595 && height === 842, `page 1 of ${number}.pdf is ${width}×${height} px at 72 dpi, expected A4 (595×842)`);
    check(size > 5_000 && share > 0.005 && share < 0.2, `page 1 of ${number}.pdf looks blank or wrong: ${size} bytes, ${(share * 100).toFixed(2)} % dark pixels`);
    const text = (await run('pdftotext', ['-enc', 'UTF-8', file, '-'])).replace(/[\u00a0\u202f]/g, ' ');
    for (const part of [`Facture ${number}`, ...totals.map((x) => x.replace(/[\u00a0\u202f]/g, ' ')), 'Désignation', ORGANISATION]) {
      check(text.includes(part), `${number}.pdf: pdftotext finds no « ${part} » in:\n${text}`);
    }
    t.diagnostic(`${number}.pdf: ${bytes.length} bytes; page 1 as PNG ${size} bytes, ${(share * 100).toFixed(2)} % dark pixels`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Fills the launch form of /generations (the type first: with JavaScript, the fields of the other
 * types are hidden) and sends it; resolves with the HTTP status of the page it leads to.
 */
async function launchFrom(page, values) {
  const form = page.locator('form[action="/generations"]');
  check(await form.count() === 1, `${pathOf(page)}: no launch form (form action="/generations")`);
  if (values.type) await form.locator('select[name=type]').selectOption(values.type);
  for (const name of ['duree', 'pages', 'prompt']) {
    if (values[name] !== undefined) await form.locator(`[name=${name}]`).fill(values[name]);
  }
  if (values.format !== undefined) await form.locator('select[name=format]').selectOption(values.format);
  for (const name of ['resolution', 'illustrations']) {
    if (values[name]) await form.locator(`input[name=${name}][value="${values[name]}"]`).check();
  }
  return submit(page, form.getByRole('button', { name: 'Lancer la génération' }));
}

/** The generation a launch led to: /generations?lancee=ID. */
function launched(page, what) {
  const u = new URL(page.url());
  const id = u.searchParams.get('lancee');
  check(u.pathname === '/generations' && id, `${what}: landed on ${pathOf(page)}, expected /generations?lancee=…`);
  return id;
}

/**
 * Reloads /generations?lancee=ID until its notice no longer says the generation is running, and
 * resolves with the notice. The test engine reports a running generation 3 s after its launch; the
 * portal runs it every second, but only 10 to 40 s after it started, so the walk also runs it once
 * per reload from the command line (`nanoclip run-job test-engine`).
 */
async function outcomeOf(page, id, launchedAt) {
  const deadline = launchedAt + 60_000;
  for (;;) {
    if (Date.now() - launchedAt > 3_500) await runJob('test-engine');
    const res = await page.goto(url(`/generations?lancee=${id}`), { waitUntil: 'load' });
    check(res?.status() === 200, `/generations?lancee=${id} answered ${res?.status()}`);
    const notice = await textOf(page, '#lancement');
    if (!notice.startsWith('Génération lancée')) return notice;
    check(Date.now() < deadline, `/generations?lancee=${id}: still « ${notice} » a minute after the launch (the test engine reports after 3 s)`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** The text of the profile card of /compte. */
const profile = (page) => page.locator('section:has(#profil)').innerText().then((s) => s.replace(/\s+/g, ' '));

describe('accounts: sign up, activation, log in, reset, invitation', () => {
  let browser, owner, phone, ownerPage;
  const seen = []; // { label, html } of every page audited
  before(async () => {
    browser = await launch();
    owner = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
    // The 360 px phone of mobile.test.mjs; it gets the cookies of the context it checks a page for.
    phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    ownerPage = await owner.newPage();
    console.log(`accounts: owner ${OWNER}, member ${MEMBER}; e-mails read from ${MAIL_DIR}`);
  });
  after(async () => { await flow.reseauContext?.close(); await browser?.close(); });

  /**
   * axe on the page as it is (light, then colour contrast in dark mode), then the same page on
   * the phone: reopened there with the same cookies (GET pages, `status` is what it must answer),
   * or, for the answer to a POST (`reopen: false`), this page resized to 360 px. `details: true`
   * opens every <details> first (what a reader unfolds is checked too).
   */
  /**
   * A GET through the context's request API, once more if the connection was closed under it: a
   * kept-alive connection the server closes just as it is reused (« socket hang up » on a loaded
   * machine), which a browser retries by itself for a GET.
   */
  async function getAgain(page, address, options = {}) {
    try {
      return await page.context().request.get(address, options);
    } catch (error) {
      if (!/socket hang up|ECONNRESET|EPIPE/.test(String(error))) throw error;
      return await page.context().request.get(address, options);
    }
  }

  async function audit(t, page, label, { status = 200, reopen = true, details = false } = {}) {
    const at = pathOf(page);
    const where = `${label} (${new URL(page.url()).pathname})`;
    // Kept for the Nu HTML checker at the end: the server's bytes for a GET page (fetched again
    // with the same cookies), the document as shown for the answer to a POST.
    let html;
    if (reopen) {
      const res = await getAgain(page, url(at), { maxRedirects: 0 });
      html = await res.text();
    } else {
      html = await page.content();
    }
    seen.push({ label: where, html });
    const unfold = (p) => (details ? p.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; })) : null);
    await t.test(`axe: ${label}`, async () => {
      await unfold(page);
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
    await t.test(`pa11y: ${label}`, async () => {
      const errors = await htmlcsErrors(page);
      check(errors.length === 0, () => `${where}: ${errors.length} HTML_CodeSniffer (pa11y) error(s):\n` + errors
        .map((e) => `  ${e.code}\n    ${e.message}\n    at ${e.context}`).join('\n'));
    });
    await t.test(`360 px: ${label}`, async () => {
      let target = page;
      if (reopen) {
        await phone.clearCookies();
        await phone.addCookies(await page.context().cookies());
        target = await phone.newPage();
        const res = await target.goto(url(at), { waitUntil: 'load', timeout: 30_000 });
        check(res?.status() === status && pathOf(target) === at,
          `${where} at 360 px: reopening ${at} answered ${res?.status()} at ${pathOf(target)}, expected ${status} at ${at}`);
      } else {
        await page.setViewportSize(PHONE);
      }
      await unfold(target);
      try {
        const problems = [];
        const m = await target.evaluate(`(${OVERFLOW_FN})(${JSON.stringify({ width: PHONE.width, cssPath: CSS_PATH_FN })})`);
        if (m.scrollWidth > PHONE.width) {
          problems.push(`${where}: the page is ${m.scrollWidth} px wide at a ${PHONE.width} px viewport (horizontal scroll)` +
            (m.wide.length ? `; the outermost elements sticking out:\n  ${m.wide.join('\n  ')}` : ''));
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

  test('sign up: /compte/inscription → « vérifiez votre boîte mail »', STEP, async (t) => {
    const page = ownerPage;
    if (!(await open(t, page, { path: '/compte/inscription', expect: 200 }))) return;
    await audit(t, page, 'inscription');

    const form = page.locator('form[action="/compte/inscription"]');
    check(await form.count() === 1, '/compte/inscription: no <form action="/compte/inscription">');
    check(await form.locator('input[type=hidden][name=csrf]').count() === 1, '/compte/inscription: the form has no hidden csrf input');
    const plan = form.locator('input[type=radio][name=plan][value=eglise]');
    check(await plan.count() === 1, '/compte/inscription: no radio button plan=eglise');
    const button = form.getByRole('button', { name: 'Créer le compte' });

    // First with a confirmation that differs: the form comes back with its errors, the passwords
    // emptied, the rest kept; that state is checked for accessibility too.
    await fill(form, { organisation: ORGANISATION, email: OWNER, mot_de_passe: PASSWORD, confirmation: `${PASSWORD}8` });
    await plan.check();
    let status = await submit(page, button);
    check(status === 400 && new URL(page.url()).pathname === '/compte/inscription',
      `signing up with a confirmation that differs: ${pathOf(page)} answered ${status}, expected 400 on /compte/inscription${await shown(page)}`);
    const summary = page.locator('#erreurs[role=alert]');
    check(await summary.count() === 1, `/compte/inscription with an error: no error summary (#erreurs, role="alert")${await shown(page)}`);
    const confirmation = form.locator('[name=confirmation]');
    check(await confirmation.getAttribute('aria-invalid') === 'true',
      '/compte/inscription with a confirmation that differs: the confirmation field is not aria-invalid="true"');
    const kept = { organisation: await form.locator('[name=organisation]').inputValue(), email: await form.locator('[name=email]').inputValue(),
      mot_de_passe: await form.locator('[name=mot_de_passe]').inputValue(), confirmation: await confirmation.inputValue() };
    check(kept.organisation === ORGANISATION && kept.email === OWNER && !kept.mot_de_passe && !kept.confirmation,
      `/compte/inscription with an error: expected the organisation and address kept and the passwords emptied, got ${JSON.stringify(kept)}`);
    await audit(t, page, 'inscription (erreurs)', { reopen: false });

    await fill(form, { organisation: ORGANISATION, email: OWNER, mot_de_passe: PASSWORD, confirmation: PASSWORD });
    await plan.check();
    flow.signUpAt = Date.now();
    status = await submit(page, button);
    await expectAt(page, status, 200, '/compte/info?avis=verifiez', 'after signing up');
    const notice = await page.locator('main').innerText();
    check(/Vérifiez votre boîte mail/.test(notice), `/compte/info?avis=verifiez does not say « Vérifiez votre boîte mail »${await shown(page)}`);
    await audit(t, page, 'info (vérifiez)');
    flow.signedUp = true;
  });

  test('activation link: signs in and /compte shows the address', STEP, async (t) => {
    if (!needs(t, 'signedUp')) return;
    const page = ownerPage;
    const mail = await waitForLink(OWNER, '/compte/activation', { since: flow.signUpAt });
    const link = new URL(mail.link);
    if (link.origin !== new URL(BASE).origin) console.log(`note: the activation link is on ${link.origin}, opened on ${BASE}`);
    const opened = await page.goto(url(link.pathname + link.search), { waitUntil: 'load' });
    await expectAt(page, opened?.status(), 200, '/compte/activation', `opening the activation link (${mail.file}): a page with a button, nothing done yet`);
    await audit(t, page, 'activation (bouton)');
    const [res] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.getByRole('button', { name: 'Activer mon compte' }).click(),
    ]);
    // Activated and signed in: the first period is paid before the organisation is active.
    await expectAt(page, res?.status(), 200, '/compte/inscription/paiement', 'pressing « Activer mon compte »');
    await audit(t, page, 'inscription (paiement)');
    const [toPay] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.getByRole('button', { name: /^Payer / }).click(),
    ]);
    check(toPay?.status() === 200 && pathOf(page).startsWith('/paiement-test/'),
      `pressing « Payer » after activation: landed on ${pathOf(page)} (HTTP ${toPay?.status()})${await shown(page)}`);
    await audit(t, page, 'paiement de test (inscription)');
    const [paid] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.getByRole('button', { name: 'Approuver le paiement' }).click(),
    ]);
    check(paid?.status() === 200 && pathOf(page).startsWith('/achats/retour/'),
      `approving the first payment: landed on ${pathOf(page)} (HTTP ${paid?.status()})${await shown(page)}`);
    const result = await page.locator('#resultat').innerText();
    check(/^Paiement accepté/.test(result.trim()), `the sign-up payment's result reads « ${result} »`);
    await audit(t, page, 'inscription (payée)');
    const shownAccount = await page.goto(url('/compte'), { waitUntil: 'load' });
    await expectAt(page, shownAccount?.status(), 200, '/compte', 'opening /compte once paid');
    const card = await profile(page);
    check(card.includes(OWNER), `/compte after activation: the profile does not show ${OWNER} (it reads « ${card} »)`);
    check(/rôle : propriétaire/.test(card), `/compte after activation: the profile does not say « rôle : propriétaire » (« ${card} »)`);
    check(card.includes(ORGANISATION), `/compte after activation: the profile does not name ${ORGANISATION} (« ${card} »)`);
    flow.ownerSignedIn = true;
    await audit(t, page, 'compte (propriétaire)');

    // The link serves once: opened again (in another browser), it says so, with 410 Gone.
    const other = await browser.newContext({ viewport: DESKTOP });
    try {
      const again = await other.newPage();
      const res2 = await again.goto(url(link.pathname + link.search), { waitUntil: 'load' });
      await expectAt(again, res2?.status(), 410, '/compte/info?avis=lien-invalide', 'the activation link opened once it was used');
      await audit(t, again, 'info (lien invalide)', { status: 410 });
    } finally {
      await other.close();
    }
  });

  test('log out: « Se déconnecter », then /compte asks to log in', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn')) return;
    const page = ownerPage;
    if (pathOf(page) !== '/compte') await open(t, page, { path: '/compte', expect: 200 });
    const status = await submit(page, page.getByRole('main').getByRole('button', { name: 'Se déconnecter', exact: true }));
    check(status === 200, `after « Se déconnecter »: ${pathOf(page)} answered ${status}`);
    flow.ownerSignedIn = false;
    const res = await page.goto(url('/compte'), { waitUntil: 'load' });
    await expectAt(page, res?.status(), 200, '/compte/connexion', 'opening /compte after logging out');
    check(new URL(page.url()).searchParams.get('suite') === '/compte',
      `/compte after logging out redirects to ${pathOf(page)}, expected /compte/connexion?suite=%2Fcompte`);
    flow.loggedOut = true;
  });

  test('log in: /compte/connexion → back on /compte', STEP, async (t) => {
    if (!needs(t, 'loggedOut')) return;
    const page = ownerPage; // on /compte/connexion?suite=%2Fcompte
    await audit(t, page, 'connexion');
    const form = page.locator('form[action="/compte/connexion"]');
    await fill(form, { email: OWNER, mot_de_passe: PASSWORD });
    const status = await submit(page, form.getByRole('button', { name: 'Se connecter' }));
    await expectAt(page, status, 200, '/compte', 'after logging in');
    const card = await profile(page);
    check(card.includes(OWNER), `/compte after logging in: the profile does not show ${OWNER} (« ${card} »)`);
    flow.ownerSignedIn = true;
  });

  test('forgotten password: « Mot de passe oublié ? » → e-mail sent', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn')) return;
    const page = ownerPage;
    await submit(page, page.getByRole('main').getByRole('button', { name: 'Se déconnecter', exact: true }));
    flow.ownerSignedIn = false;
    if (!(await open(t, page, { path: '/compte/connexion', expect: 200 }))) return;
    const link = page.getByRole('link', { name: 'Mot de passe oublié ?' });
    check(await link.count() === 1, '/compte/connexion: no link « Mot de passe oublié ? »');
    await Promise.all([page.waitForNavigation(), link.click()]);
    check(pathOf(page) === '/compte/mot-de-passe-oublie', `« Mot de passe oublié ? » leads to ${pathOf(page)}, expected /compte/mot-de-passe-oublie`);
    await audit(t, page, 'mot-de-passe-oublie');

    const form = page.locator('form[action="/compte/mot-de-passe-oublie"]');
    await fill(form, { email: OWNER });
    flow.resetAskedAt = Date.now();
    const status = await submit(page, form.getByRole('button', { name: 'Recevoir le lien' }));
    await expectAt(page, status, 200, '/compte/info?avis=lien-envoye', 'after asking for a reset link');
    await audit(t, page, 'info (lien envoyé)');
    flow.resetAsked = true;
  });

  test('reset link: choose a new password', STEP, async (t) => {
    if (!needs(t, 'resetAsked')) return;
    const page = ownerPage;
    const mail = await waitForLink(OWNER, '/compte/reinitialisation', { since: flow.resetAskedAt });
    const link = new URL(mail.link);
    const res = await page.goto(url(link.pathname + link.search), { waitUntil: 'load' });
    await expectAt(page, res?.status(), 200, '/compte/reinitialisation', `opening the reset link (${mail.file})`);
    await audit(t, page, 'reinitialisation');

    const form = page.locator('form[action="/compte/reinitialisation"]');
    await fill(form, { mot_de_passe: NEW_PASSWORD, confirmation: NEW_PASSWORD });
    const status = await submit(page, form.getByRole('button', { name: 'Enregistrer' }));
    await expectAt(page, status, 200, '/compte/info?avis=mot-de-passe-reinitialise', 'after choosing the new password');
    await audit(t, page, 'info (mot de passe réinitialisé)');
    flow.passwordReset = true;
  });

  test('log in with the new password (the old one is refused)', STEP, async (t) => {
    if (!needs(t, 'passwordReset')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/compte/connexion', expect: 200 }))) return;
    const form = page.locator('form[action="/compte/connexion"]');
    await fill(form, { email: OWNER, mot_de_passe: PASSWORD });
    let status = await submit(page, form.getByRole('button', { name: 'Se connecter' }));
    check(status === 401 && new URL(page.url()).pathname === '/compte/connexion',
      `logging in with the old password after the reset: ${pathOf(page)} answered ${status}, expected 401 on /compte/connexion${await shown(page)}`);
    const alert = (await page.locator('[role=alert]').allInnerTexts()).join(' ');
    check(/Adresse e-mail ou mot de passe incorrect/.test(alert),
      `/compte/connexion with a wrong password does not say « Adresse e-mail ou mot de passe incorrect. »${await shown(page)}`);
    check(await form.locator('[name=email]').inputValue() === OWNER, '/compte/connexion with a wrong password: the address typed is not kept');
    await audit(t, page, 'connexion (mot de passe incorrect)', { reopen: false });

    await fill(form, { mot_de_passe: NEW_PASSWORD });
    status = await submit(page, form.getByRole('button', { name: 'Se connecter' }));
    await expectAt(page, status, 200, '/compte', 'after logging in with the new password');
    const card = await profile(page);
    check(card.includes(OWNER), `/compte after logging in with the new password: the profile does not show ${OWNER} (« ${card} »)`);
    flow.ownerSignedIn = true;
  });

  test('JavaScript off: the login form is a plain POST form that signs in', STEP, async (t) => {
    if (!needs(t, 'passwordReset')) return;
    const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP });
    try {
      const page = await nojs.newPage();
      if (!(await open(t, page, { path: '/compte/connexion', expect: 200 }))) return;
      const form = page.locator('form[action="/compte/connexion"]');
      check(await form.count() === 1, '/compte/connexion without JavaScript: no <form action="/compte/connexion">');
      check(((await form.getAttribute('method')) || '').toLowerCase() === 'post', '/compte/connexion: the form is not method="post"');
      for (const name of ['email', 'mot_de_passe']) {
        check(await form.locator(`[name="${name}"]`).isVisible(), `/compte/connexion without JavaScript: the field ${name} is not visible`);
      }
      const button = form.getByRole('button', { name: 'Se connecter' });

      // Sent empty: the server answers, nothing is lost (no throttling is involved).
      let status = await submit(page, button);
      check(status === 400 && new URL(page.url()).pathname === '/compte/connexion',
        `the empty login form without JavaScript: ${pathOf(page)} answered ${status}, expected 400 on /compte/connexion${await shown(page)}`);
      const alert = (await page.locator('[role=alert]').allInnerTexts()).join(' ');
      check(/Saisissez votre adresse e-mail et votre mot de passe/.test(alert),
        `the empty login form without JavaScript does not say « Saisissez votre adresse e-mail et votre mot de passe. »${await shown(page)}`);

      await fill(form, { email: OWNER, mot_de_passe: NEW_PASSWORD });
      status = await submit(page, button);
      await expectAt(page, status, 200, '/compte', 'logging in without JavaScript');
      const card = await profile(page);
      check(card.includes(OWNER), `/compte without JavaScript: the profile does not show ${OWNER} (« ${card} »)`);
    } finally {
      await nojs.close();
    }
  });

  test('invite a member: « Envoyer l’invitation »', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn')) return;
    const page = ownerPage;
    if (pathOf(page) !== '/compte') await open(t, page, { path: '/compte', expect: 200 });
    const form = page.locator('form[action="/compte/membres"]');
    check(await form.count() === 1, '/compte as owner: no invitation form (form action="/compte/membres")');
    await fill(form, { email: MEMBER });
    flow.invitedAt = Date.now();
    const status = await submit(page, form.getByRole('button', { name: 'Envoyer l’invitation' }));
    await expectAt(page, status, 200, '/compte?avis=invitation-envoyee', 'after sending the invitation');
    const notice = (await page.locator('[role=status]').allInnerTexts()).join(' ');
    check(/L’invitation est partie/.test(notice), `/compte after inviting: no notice « L’invitation est partie »${await shown(page)}`);
    await audit(t, page, 'compte (invitation envoyée)');
    flow.invited = true;
  });

  test('invitation: opened in another browser, the member chooses a password and lands on /compte', STEP, async (t) => {
    if (!needs(t, 'invited')) return;
    const mail = await waitForLink(MEMBER, '/compte/invitation', { since: flow.invitedAt });
    const link = new URL(mail.link);
    const member = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
    try {
      const page = await member.newPage();
      const res = await page.goto(url(link.pathname + link.search), { waitUntil: 'load' });
      await expectAt(page, res?.status(), 200, '/compte/invitation', `opening the invitation link (${mail.file})`);
      const intro = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
      check(intro.includes(`Rejoindre ${ORGANISATION}`), `/compte/invitation: the heading is not « Rejoindre ${ORGANISATION} »${await shown(page)}`);
      check(intro.includes(MEMBER), `/compte/invitation: the page does not show the invited address ${MEMBER}`);
      await audit(t, page, 'invitation');

      const form = page.locator('form[action="/compte/invitation"]');
      await fill(form, { mot_de_passe: MEMBER_PASSWORD, confirmation: MEMBER_PASSWORD });
      const status = await submit(page, form.getByRole('button', { name: 'Enregistrer' }));
      await expectAt(page, status, 200, '/compte', 'after accepting the invitation');
      const card = await profile(page);
      check(card.includes(MEMBER), `/compte as the new member: the profile does not show ${MEMBER} (« ${card} »)`);
      check(/rôle : membre/.test(card), `/compte as the new member: the profile does not say « rôle : membre » (« ${card} »)`);
      check(card.includes(ORGANISATION), `/compte as the new member: the profile does not name ${ORGANISATION} (« ${card} »)`);
      check(await page.locator('form[action="/compte/membres"]').count() === 0, '/compte as a member: the invitation form is shown (owners only)');
      await audit(t, page, 'compte (membre)');
    } finally {
      await member.close();
    }

    // The owner now sees the member in the team.
    if (flow.ownerSignedIn) {
      const res = await ownerPage.goto(url('/compte'), { waitUntil: 'load' });
      check(res?.status() === 200, `/compte as owner after the invitation was accepted: answered ${res?.status()}`);
      const team = (await ownerPage.locator('section:has(#membres) table').innerText()).replace(/\s+/g, ' ');
      check(team.includes(MEMBER) && /Membre/.test(team), `/compte as owner: the team table does not list ${MEMBER} as Membre (« ${team} »)`);
      // The table now has its Actions column (Retirer, Transmettre la propriété): the widest state.
      await audit(t, ownerPage, 'compte (propriétaire, avec un membre)');
    }
  });
  test('dashboard: /tableau-de-bord as owner', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn')) return;
    if (!(await open(t, ownerPage, { path: '/tableau-de-bord', expect: 200 }))) return;
    const balance = (await ownerPage.locator('#disponible').innerText()).trim();
    check(balance === '30\u00a0crédits', `/tableau-de-bord of a new Église organisation: the balance reads « ${balance} », expected « 30 crédits » (its first allotment)`);
    await audit(t, ownerPage, 'tableau de bord (propriétaire)', { details: true });
  });

  // A history the way staff would make one (the portal's operator command, never rows written by
  // hand): 2 of the 30 allotted credits left, 24 credits given and taken back one by one (51
  // movements: two pages of history), then 2 credits offered that expire in 6 days. The balance, 4,
  // is under the alert threshold (5): the banner shows, and the radar (credits lost within 14 days).
  // A running hold needs a launched generation, which the portal cannot start yet (/generations).
  test('credits: the operator moves the organisation\'s credits (nanoclip credits adjust)', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn')) return;
    // The Paris day the history begins: filters « from » it find every movement below, even when
    // the run crosses midnight in Paris before they are read.
    flow.historyDay = parisDay(0);
    await adjust(OWNER, -28, 'Crédits d’essai retirés');
    for (let i = 1; i <= 24; i++) {
      await adjust(OWNER, 1, `Essai de l’historique n°\u00a0${i}`, parisDay(1));
      await adjust(OWNER, -1, `Essai de l’historique n°\u00a0${i}, repris`);
    }
    flow.expiring = parisDay(6);
    // Typed with plain spaces, as staff would: the page shows it with French typography.
    const available = await adjust(OWNER, 2, 'Geste commercial « Noël »', flow.expiring);
    check(available === 4, `after the adjustments the organisation has ${available} credits, expected 4`);
    flow.history = true;
  });

  test('dashboard with a history: the balance first, the low-balance banner, the expiry radar', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'history')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/tableau-de-bord', expect: 200 }))) return;
    // Spaces and line breaks of the markup as one space; no-break spaces kept (they are checked).
    const said = async (sel) => (await page.locator(sel).allInnerTexts()).join(' ').replace(/[ \t\r\n]+/g, ' ').trim();
    check(await said('#disponible') === '4\u00a0crédits', `/tableau-de-bord: the balance reads « ${await said('#disponible')} », expected « 4 crédits »`);
    const banner = await said('#solde-bas');
    check(/il reste 4\u00a0crédits, sous votre seuil d’alerte de 5/.test(banner), `/tableau-de-bord at 4 credits: the low-balance banner reads « ${banner} »`);
    const radar = await said('.radar');
    check(/^2\u00a0crédits expirent le .* \(dans 6\u00a0jours\)/.test(radar), `/tableau-de-bord: the radar reads « ${radar} », expected « 2 crédits expirent le … (dans 6 jours) »`);
    // On a phone the balance is what a reader sees first: above the fold, before the notices.
    await t.test('360 px: the balance first, on the first screen', async () => {
      await phone.clearCookies();
      await phone.addCookies(await page.context().cookies());
      const small = await phone.newPage();
      try {
        await small.goto(url('/tableau-de-bord'), { waitUntil: 'load' });
        const place = await small.evaluate(() => {
          const top = (sel) => document.querySelector(sel)?.getBoundingClientRect().top ?? null;
          return { balance: top('#disponible'), banner: top('#solde-bas'), radar: top('.radar'), height: innerHeight };
        });
        check(place.balance !== null && place.balance + 40 < place.height,
          `/tableau-de-bord at 360 px: the balance (#disponible) is at ${Math.round(place.balance)} px, below the first screen (${place.height} px)`);
        check(place.balance < place.banner && place.balance < place.radar,
          `/tableau-de-bord at 360 px: the notices come before the balance (balance ${Math.round(place.balance)} px, banner ${Math.round(place.banner)} px, radar ${Math.round(place.radar)} px)`);
      } finally {
        await small.close();
      }
    });
    await audit(t, page, 'tableau de bord (solde bas, crédits qui expirent)', { details: true });
    await t.test('keyboard: every link, the chart\'s data and its table reached by Tab, focus shown', async () => {
      await page.goto(url('/tableau-de-bord'), { waitUntil: 'load' });
      const walked = await tabWalk(page, ['a.skip-link', 'summary', 'a[href="/credits/historique"]']);
      check(walked[0]?.matches['a.skip-link'], `/tableau-de-bord: the first Tab reaches ${walked[0]?.path}, expected the skip link`);
      for (const sel of ['summary', 'a[href="/credits/historique"]']) {
        check(walked.some((f) => f.matches[sel]), `/tableau-de-bord: Tab never reaches ${sel} (reached: ${walked.map((f) => f.path).join(', ')})`);
      }
      const bad = walked.slice(1).filter((f) => !f.onScreen || !f.indicator);
      check(bad.length === 0, `/tableau-de-bord: focused without a visible focus indicator or off screen: ${bad.map((f) => `${f.path} « ${f.name} »`).join('; ')}`);
      // Enter on the summary unfolds the data; the next Tab reaches its table (it scrolls on a phone).
      await page.focus('summary');
      await page.keyboard.press('Enter');
      check(await page.locator('figure details').evaluate((d) => d.open), '/tableau-de-bord: Enter on « Voir les données du graphique » does not open it');
      await page.keyboard.press('Tab');
      const next = await page.evaluate(() => ({ region: document.activeElement?.matches('figure details .table-wrap[tabindex="0"]'), tag: document.activeElement?.localName }));
      check(next.region, `/tableau-de-bord: after opening the chart's data, Tab reaches <${next.tag}>, expected its table's scrolling region (.table-wrap tabindex="0")`);
    });
  });

  test('history: /credits/historique, its two pages, its filters and its export', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'history')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/credits/historique', expect: 200 }))) return;
    const resume = (await page.locator('#resume').innerText()).replace(/[ \t\r\n]+/g, ' ');
    check(resume.startsWith('51\u00a0mouvements · page 1 sur 2'), `/credits/historique: the summary reads « ${resume} », expected « 51 mouvements · page 1 sur 2 … »`);
    check(await page.locator('#mouvements tbody tr').count() === 50, '/credits/historique: page 1 does not show 50 lines');
    await audit(t, page, 'historique');
    await t.test('keyboard: the filters, the export, the table and the next page reached by Tab, focus shown', async () => {
      const wanted = ['input[name=type][value=ajustement]', '#du', '#au', 'button[type=submit]', 'a[download]', '.table-wrap[tabindex="0"]', 'a[rel=next]'];
      const walked = await tabWalk(page, ['a.skip-link', ...wanted]);
      check(walked[0]?.matches['a.skip-link'], `/credits/historique: the first Tab reaches ${walked[0]?.path}, expected the skip link`);
      const missed = wanted.filter((sel) => !walked.some((f) => f.matches[sel]));
      check(missed.length === 0, `/credits/historique: Tab never reaches ${missed.join(', ')} (reached: ${walked.map((f) => f.path).join(', ')})`);
      const bad = walked.slice(1).filter((f) => !f.onScreen || !f.indicator);
      check(bad.length === 0, `/credits/historique: focused without a visible focus indicator or off screen: ${bad.map((f) => `${f.path} « ${f.name} »`).join('; ')}`);
    });
    const [res] = await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Page suivante' }).click()]);
    await expectAt(page, res?.status(), 200, '/credits/historique?page=2', '« Page suivante »');
    check(await page.locator('#mouvements tbody tr').count() === 1, '/credits/historique?page=2: expected the last line (the first allotment)');
    await audit(t, page, 'historique (page 2)');
    // Wrong filters: the page says what is wrong (400) and keeps what was typed.
    if (!(await open(t, page, { path: '/credits/historique?type=vol&du=31/02/2026&au=demain', expect: 400 }))) return;
    check(await page.locator('#problemes[role=alert] li').count() === 3, `/credits/historique with 3 wrong filters: expected 3 problems in #problemes${await shown(page)}`);
    check(await page.locator('#du').inputValue() === '31/02/2026', `/credits/historique with a wrong date: « 31/02/2026 » is not kept in « Du » (it holds « ${await page.locator('#du').inputValue()} »)`);
    await audit(t, page, 'historique (filtres invalides)', { status: 400 });
    // The export: a CSV for French Excel, every line.
    const csv = await getAgain(page, url('/credits/historique.csv'));
    const body = await csv.text();
    check(csv.status() === 200 && /^text\/csv/.test(csv.headers()['content-type']),
      `/credits/historique.csv answered ${csv.status()} ${csv.headers()['content-type']}`);
    check(body.startsWith('\ufeffDate;Heure;Mouvement') && body.trim().split('\r\n').length === 52,
      `/credits/historique.csv: expected a BOM, the header and 51 lines, got ${body.trim().split('\r\n').length} lines starting « ${body.slice(0, 60)} »`);
  });

  test('JavaScript off: the dashboard and the history work as plain pages and forms', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'history')) return;
    const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP });
    try {
      await nojs.addCookies(await owner.cookies());
      const page = await nojs.newPage();
      if (!(await open(t, page, { path: '/tableau-de-bord', expect: 200 }))) return;
      check(await page.locator('#disponible').isVisible(), '/tableau-de-bord without JavaScript: the balance is not visible');
      check(await page.locator('figure svg[role=img]').isVisible(), '/tableau-de-bord without JavaScript: the chart is not visible');
      await page.getByText('Voir les données du graphique').click();
      check(await page.locator('figure table').isVisible(), '/tableau-de-bord without JavaScript: « Voir les données du graphique » does not show the table');

      if (!(await open(t, page, { path: '/credits/historique', expect: 200 }))) return;
      const form = page.locator('form[action="/credits/historique"]');
      check(((await form.getAttribute('method')) || '').toLowerCase() === 'get', '/credits/historique: the filters form is not method="get"');
      await form.getByLabel('Ajustements').check();
      await form.getByLabel('Du').fill(flow.historyDay);
      const [res] = await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: 'Filtrer' }).click()]);
      const u = new URL(page.url());
      check(res?.status() === 200 && u.pathname === '/credits/historique' && u.searchParams.get('type') === 'ajustement' && u.searchParams.get('du') === flow.historyDay,
        `the filters sent without JavaScript led to ${pathOf(page)} (HTTP ${res?.status()}), expected /credits/historique?type=ajustement&du=${flow.historyDay}`);
      const kinds = await page.locator('#mouvements tbody tr td:nth-child(2)').allInnerTexts();
      check(kinds.length === 50 && kinds.every((k) => k.trim() === 'Ajustement'),
        `/credits/historique?type=ajustement: expected the 50 adjustments, got ${kinds.length} lines (${[...new Set(kinds)].join(', ')})`);
      check(await form.getByLabel('Ajustements').isChecked(), '/credits/historique?type=ajustement: the box « Ajustements » is not kept checked');
    } finally {
      await nojs.close();
    }
  });

  // Generations, launched from /generations by the owner of the Église organisation (4 credits
  // left): a launch the test engine reports as a success (1 credit captured), refusals that cost
  // nothing (4K on Plan Église, a prompt in an excluded category), a wrong field (400, values kept),
  // and a launch the test engine fails (« échec test » in its prompt). Plan Église renders one
  // generation at a time: each launch waits for the previous one's outcome.
  test('generations: a launch from /generations becomes a capture (« Réussie · 1 crédit débité »)', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'history')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/generations', expect: 200 }))) return;
    check(await textOf(page, 'section:has(#liste)') === 'Vos générations Aucune génération pour le moment.',
      `/generations of a new organisation: expected « Aucune génération pour le moment. », the list reads « ${await textOf(page, 'section:has(#liste)')} »`);
    await audit(t, page, 'générations (aucune)');

    // The cost of what is filled in shows before « Lancer », from the simulator (Plan Église).
    check(await textOf(page, '#solde-disponible') === 'Solde disponible\u202f: 4\u00a0crédits',
      `/generations: the balance reads « ${await textOf(page, '#solde-disponible')} », expected « Solde disponible : 4 crédits »`);
    await page.locator('form[action="/generations"] select[name=type]').selectOption('video');
    await page.locator('form[action="/generations"] [name=duree]').fill('10');
    const costOf = async (expected) => {
      await page.waitForFunction((e) => {
        const p = document.getElementById('cout-estime');
        return p && !p.hidden && p.textContent.includes(e);
      }, expected, { timeout: 5_000 }).catch(() => {});
      return textOf(page, '#cout-estime');
    };
    let cost = await costOf('3');
    check(cost === 'Coût de cette génération\u202f: 3\u00a0crédits (réservation au lancement, débit seulement si le rendu réussit).',
      `/generations, a 10 s video filled in: the estimate reads « ${cost} », expected « Coût de cette génération : 3 crédits (…) »`);
    await page.locator('form[action="/generations"] input[name=resolution][value="4k"]').check();
    cost = await costOf('4K');
    check(cost === 'La 4K est réservée au Plan Réseau.',
      `/generations, 4K on Plan Église: the estimate reads « ${cost} », expected the plan's refusal « La 4K est réservée au Plan Réseau. »`);
    await page.locator('form[action="/generations"] input[name=resolution][value="hd"]').check();
    await page.locator('form[action="/generations"] select[name=type]').selectOption('image');
    cost = await costOf('1\u00a0crédit');
    check(cost === 'Coût de cette génération\u202f: 1\u00a0crédit (réservation au lancement, débit seulement si le rendu réussit).',
      `/generations, an image filled in: the estimate reads « ${cost} », expected « Coût de cette génération : 1 crédit (…) »`);

    const launchedAt = Date.now();
    const status = await launchFrom(page, { type: 'image', prompt: 'Un vitrail lumineux pour la veillée de Noël, tons chauds, format 16:9' });
    check(status === 200, `launching an image: ${pathOf(page)} answered ${status}${await shown(page)}`);
    const id = launched(page, 'launching an image');
    const notice = await textOf(page, '#lancement');
    // The engine reports 3 s after the launch: on a slow machine the notice may already say so.
    check(/^Génération lancée\u202f: 1\u00a0crédit réservé pendant le rendu\./.test(notice) || notice.startsWith('Génération réussie'),
      `/generations after launching an image: the notice reads « ${notice} », expected « Génération lancée : 1 crédit réservé pendant le rendu. »`);
    if (notice.startsWith('Génération lancée')) {
      check(await page.getByRole('link', { name: 'Actualiser pour voir le résultat' }).getAttribute('href') === `/generations?lancee=${id}#lancement`,
        '/generations after a launch: « Actualiser pour voir le résultat » does not lead back to this notice');
      // As shown, not reopened: a reopened page may already show the outcome.
      await audit(t, page, 'générations (lancée)', { reopen: false });
      // The page asks for itself while a generation renders and puts the outcome in, without a
      // reload: the notice, a status, is read out.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, launchedAt + 3_500 - Date.now())));
      await runJob('test-engine');
      await page.waitForFunction(() => !document.getElementById('lancement').textContent.includes('Génération lancée'),
        null, { timeout: 30_000 }).catch(() => {});
      const inPlace = await textOf(page, '#lancement');
      check(inPlace === 'Génération réussie\u202f: 1\u00a0crédit débité.' && launched(page, 'the page after its own update') === id,
        `/generations?lancee=${id}, left open: the notice reads « ${inPlace} » 30 s after the engine's report, expected the page to put in « Génération réussie : 1 crédit débité. » by itself`);
      check(await page.locator(`#g-${id}[data-en-cours]`).count() === 0,
        `/generations?lancee=${id}, left open: the card of the launch is still marked running after its update`);
    } else {
      console.log('note: the generation succeeded before its « lancée » notice was read (slow machine); that state is checked by tests/web/generations.rs');
    }

    const outcome = await outcomeOf(page, id, launchedAt);
    check(outcome === 'Génération réussie\u202f: 1\u00a0crédit débité.',
      `/generations?lancee=${id}: the notice reads « ${outcome} », expected « Génération réussie : 1 crédit débité. »`);
    const line = await textOf(page, `#g-${id}`);
    check(line.includes('Réussie · 1\u00a0crédit débité') && line.includes('«\u202fUn vitrail lumineux pour la veillée de Noël'),
      `/generations: the line of the launch reads « ${line} », expected its prompt and « Réussie · 1 crédit débité »`);
    await audit(t, page, 'générations (réussie)');
    if (!(await open(t, page, { path: '/tableau-de-bord', expect: 200 }))) return;
    check(await textOf(page, '#disponible') === '3\u00a0crédits', `/tableau-de-bord after a successful image: the balance reads « ${await textOf(page, '#disponible')} », expected « 3 crédits »`);
    flow.captured = id;
  });

  test('generations: refusals cost nothing (4K on Plan Église, an excluded prompt), a wrong field keeps what was typed, a failure gives the credit back', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'captured')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/generations', expect: 200 }))) return;

    // 4K is Plan Réseau's: refused before anything is reserved.
    let status = await launchFrom(page, { type: 'image', resolution: '4k', prompt: 'Affiche de la kermesse paroissiale, couleurs vives, format portrait' });
    check(status === 200, `launching a 4K image on Plan Église: ${pathOf(page)} answered ${status}${await shown(page)}`);
    const fourK = launched(page, 'launching a 4K image on Plan Église');
    let notice = await textOf(page, '#lancement');
    check(notice.startsWith('Génération refusée\u202f: 0\u00a0crédit débité. La 4K est réservée au Plan Réseau.'),
      `/generations after a 4K launch on Plan Église: the notice reads « ${notice} », expected « Génération refusée : 0 crédit débité. La 4K est réservée au Plan Réseau. »`);
    const link = page.locator('#lancement').getByRole('link', { name: 'Je pense que c’est une erreur' });
    check(await link.getAttribute('href') === `/contact?sujet=erreur&generation=${fourK}&regle=plan_feature`,
      `/generations: « Je pense que c’est une erreur » leads to ${await link.getAttribute('href')}, expected /contact?sujet=erreur&generation=${fourK}&regle=plan_feature`);
    await audit(t, page, 'générations (refusée : 4K)');
    flow.refused = fourK;

    // The refused launch's form is filled again (4K kept): check the way out is offered, then,
    // as a user would, switch to HD and try an excluded prompt.
    check(await page.locator('#lancement a[href="/abonnement"]').count() === 1,
      '/generations after a 4K refusal: no link to /abonnement (« Voir les plans et changer de plan »)');
    check(await page.locator('input[name=resolution][value="4k"]').isChecked(),
      '/generations after a 4K refusal: the form is not filled again with the refused request');
    // A prompt in an excluded category.
    status = await launchFrom(page, { type: 'image', resolution: 'hd', prompt: 'une parodie obscène de la cène' });
    const prompt = launched(page, 'launching an image with an excluded prompt');
    notice = await textOf(page, '#lancement');
    check(status === 200 && notice.startsWith('Génération refusée\u202f: 0\u00a0crédit débité. Ce prompt relève d’une catégorie exclue'),
      `/generations after an excluded prompt: the notice reads « ${notice} », expected « Génération refusée : 0 crédit débité. Ce prompt relève d’une catégorie exclue … »`);
    check((await page.locator(`#g-${prompt} a`).getAttribute('href')).endsWith('&regle=prompt'),
      `/generations: the line of the refused prompt does not offer « Je pense que c’est une erreur » for the rule prompt`);
    await audit(t, page, 'générations (refusée : prompt)');

    // A duration out of range: the page says so (400), with what was typed.
    const typed = { type: 'video', duree: '99', prompt: 'Un chœur d’enfants qui chante Noël, plan large, format 16:9' };
    status = await launchFrom(page, typed);
    check(status === 400 && new URL(page.url()).pathname === '/generations',
      `launching a 99 s video: ${pathOf(page)} answered ${status}, expected 400 on /generations${await shown(page)}`);
    const summary = await textOf(page, '#erreurs[role=alert]');
    check(/La durée doit être comprise entre 5 et 15\u00a0secondes/.test(summary) || /entre 5 et 15/.test(summary),
      `/generations with a 99 s video: the error summary reads « ${summary} »`);
    const duree = page.locator('#lancer-duree');
    const kept = { type: await page.locator('#lancer-type').inputValue(), duree: await duree.inputValue(), prompt: await page.locator('#lancer-prompt').inputValue() };
    check(JSON.stringify(kept) === JSON.stringify(typed), `/generations with a wrong field: expected ${JSON.stringify(typed)} kept, got ${JSON.stringify(kept)}`);
    check(await duree.getAttribute('aria-invalid') === 'true' && await duree.getAttribute('aria-describedby') === 'erreur-duree',
      '/generations with a wrong duration: the field is not aria-invalid="true" with aria-describedby="erreur-duree"');
    check(await page.locator('#erreurs a').first().getAttribute('href') === '#lancer-duree', '/generations: the error summary does not link to the duration field');
    await audit(t, page, 'générations (durée hors limites)', { reopen: false });

    // « échec test » in the prompt: the test engine fails it, and the reserved credit comes back.
    if (!(await open(t, page, { path: '/generations', expect: 200 }))) return;
    const launchedAt = Date.now();
    status = await launchFrom(page, { type: 'video', duree: '8', prompt: 'Un chœur d’enfants, échec test' });
    const failed = launched(page, 'launching a video that the test engine fails');
    const outcome = await outcomeOf(page, failed, launchedAt);
    check(outcome.startsWith('Génération échouée\u202f: 0\u00a0crédit débité.'),
      `/generations?lancee=${failed}: the notice reads « ${outcome} », expected « Génération échouée : 0 crédit débité. … »`);
    check((await textOf(page, `#g-${failed}`)).includes('Échouée · 0\u00a0crédit débité'), `/generations: the failed line reads « ${await textOf(page, `#g-${failed}`)} »`);
    check(await page.locator('#generations > li').count() === 4, `/generations: expected 4 lines (a success, two refusals, a failure), got ${await page.locator('#generations > li').count()}`);
    await audit(t, page, 'générations (échouée)');

    await t.test('keyboard: the launch form, its type\'s fields and the lines\' links reached by Tab, focus shown', async () => {
      await page.goto(url('/generations'), { waitUntil: 'load' });
      await page.locator('#lancer-type').selectOption('video');
      const wanted = ['#lancer-type', '#lancer-duree', '#lancer-format', '#lancer-resolution', '#lancer-prompt',
        'form[action="/generations"] button[type=submit]', 'form a[href="/simulateur"]', `#g-${fourK} a`];
      const walked = await tabWalk(page, ['a.skip-link', ...wanted]);
      check(walked[0]?.matches['a.skip-link'], `/generations: the first Tab reaches ${walked[0]?.path}, expected the skip link`);
      const missed = wanted.filter((sel) => !walked.some((f) => f.matches[sel]));
      check(missed.length === 0, `/generations: Tab never reaches ${missed.join(', ')} (reached: ${walked.map((f) => f.path).join(', ')})`);
      const bad = walked.slice(1).filter((f) => !f.onScreen || !f.indicator);
      check(bad.length === 0, `/generations: focused without a visible focus indicator or off screen: ${bad.map((f) => `${f.path} « ${f.name} »`).join('; ')}`);
      // The other types' fields are out of the way (hidden, so not reached).
      check(!walked.some((f) => /lancer-pages|lancer-illustrations/.test(f.path)), '/generations with « Vidéo » chosen: Tab reaches the mini-book fields');
    });

    if (!(await open(t, page, { path: '/tableau-de-bord', expect: 200 }))) return;
    check(await textOf(page, '#disponible') === '3\u00a0crédits', `/tableau-de-bord after two refusals and a failure: the balance reads « ${await textOf(page, '#disponible')} », expected « 3 crédits » (nothing more taken)`);
  });

  test('« Je pense que c’est une erreur »: the contact form, prefilled with the generation and its rule', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'refused')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: `/generations?lancee=${flow.refused}`, expect: 200 }))) return;
    const [res] = await Promise.all([page.waitForNavigation(),
      page.locator('#lancement').getByRole('link', { name: 'Je pense que c’est une erreur' }).click()]);
    await expectAt(page, res?.status(), 200, `/contact?sujet=erreur&generation=${flow.refused}&regle=plan_feature`, '« Je pense que c’est une erreur »');
    const form = page.locator('form[action="/contact"]');
    check(await form.locator('[name=sujet]').inputValue() === 'erreur', `/contact from a refusal: the subject is « ${await form.locator('[name=sujet]').inputValue()} », expected « erreur »`);
    const message = await form.locator('[name=message]').inputValue();
    check(/^Ma génération du \d+/.test(message) && !message.includes(flow.refused)
        && message.includes(') a été refusée (option absente de notre plan). Je pense que c’est une erreur, parce que\u202f:'),
      `/contact from a refusal: the message reads « ${message} »`);
    await audit(t, page, 'contact (génération refusée)');
  });

  test('JavaScript off: /generations launches, explains a refusal and keeps a wrong field', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'captured')) return;
    const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP });
    try {
      await nojs.addCookies(await owner.cookies());
      const page = await nojs.newPage();
      if (!(await open(t, page, { path: '/generations', expect: 200 }))) return;
      const form = page.locator('form[action="/generations"]');
      check(((await form.getAttribute('method')) || '').toLowerCase() === 'post', '/generations: the launch form is not method="post"');
      for (const sel of ['#lancer-type', '#lancer-duree', '#lancer-format', '#lancer-resolution', '#lancer-pages', '#lancer-illustrations', '#lancer-prompt']) {
        check(await form.locator(sel).isVisible(), `/generations without JavaScript: ${sel} is not visible (every type's fields are shown)`);
      }
      let status = await launchFrom(page, { type: 'video', duree: '10', resolution: '4k', prompt: 'Procession des Rameaux, ralenti, format 16:9' });
      const id = launched(page, 'launching a 4K video without JavaScript');
      check(status === 200 && (await textOf(page, '#lancement')).startsWith('Génération refusée\u202f: 0\u00a0crédit débité. La 4K est réservée au Plan Réseau.'),
        `/generations without JavaScript, a 4K video on Plan Église: the notice reads « ${await textOf(page, '#lancement')} »`);
      const [res] = await Promise.all([page.waitForNavigation(),
        page.locator('#lancement').getByRole('link', { name: 'Je pense que c’est une erreur' }).click()]);
      await expectAt(page, res?.status(), 200, `/contact?sujet=erreur&generation=${id}&regle=plan_feature`, '« Je pense que c’est une erreur » without JavaScript');
      const prefilled = await page.locator('[name=message]').inputValue();
      check(/^Ma génération du \d.* \(Vidéo, 10\u00a0s[^)]*4K\) a été refusée/.test(prefilled),
        `/contact without JavaScript: the message is not prefilled with when and what (« ${prefilled} »)`);

      if (!(await open(t, page, { path: '/generations', expect: 200 }))) return;
      status = await launchFrom(page, { type: 'mini-livre', pages: '30', illustrations: 'riches', prompt: 'La création du monde en sept jours, pour les enfants' });
      check(status === 400 && /Un mini-livre compte entre 4 et 20\u00a0pages|entre 4 et 20/.test(await textOf(page, '#erreurs')),
        `/generations without JavaScript, a 30-page mini-book: answered ${status}${await shown(page)}`);
      check(await page.locator('#lancer-pages').inputValue() === '30' && await page.locator('input[name=illustrations][value=riches]').isChecked(),
        '/generations without JavaScript, a wrong field: « 30 » pages and « Riches » are not kept');
    } finally {
      await nojs.close();
    }
  });

  // The API is Plan Réseau's: a second organisation signs up on that plan, the way the first did.
  test('Plan Réseau: another owner signs up on Plan Réseau and activates the account', STEP, async (t) => {
    const context = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
    flow.reseauContext = context;
    const page = await context.newPage();
    if (!(await open(t, page, { path: '/compte/inscription', expect: 200 }))) return;
    const form = page.locator('form[action="/compte/inscription"]');
    await fill(form, { organisation: RESEAU, email: RESEAU_OWNER, mot_de_passe: RESEAU_PASSWORD, confirmation: RESEAU_PASSWORD });
    const plan = form.locator('input[type=radio][name=plan][value=reseau]');
    check(await plan.count() === 1, '/compte/inscription: no radio button plan=reseau');
    await plan.check();
    const since = Date.now();
    const status = await submit(page, form.getByRole('button', { name: 'Créer le compte' }));
    await expectAt(page, status, 200, '/compte/info?avis=verifiez', 'after signing up on Plan Réseau');
    const mail = await waitForLink(RESEAU_OWNER, '/compte/activation', { since });
    const link = new URL(mail.link);
    await page.goto(url(link.pathname + link.search), { waitUntil: 'load' });
    const [res] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }),
      page.getByRole('button', { name: 'Activer mon compte' }).click()]);
    await expectAt(page, res?.status(), 200, '/compte/inscription/paiement', 'activating the Plan Réseau account');
    const [toPay] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }),
      page.getByRole('button', { name: /^Payer / }).click()]);
    check(toPay?.status() === 200 && pathOf(page).startsWith('/paiement-test/'),
      `paying the Plan Réseau sign-up: landed on ${pathOf(page)} (HTTP ${toPay?.status()})${await shown(page)}`);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }),
      page.getByRole('button', { name: 'Approuver le paiement' }).click()]);
    check(pathOf(page).startsWith('/achats/retour/'), `approving the Plan Réseau sign-up: landed on ${pathOf(page)}`);
    const opened = await page.goto(url('/compte'), { waitUntil: 'load' });
    await expectAt(page, opened?.status(), 200, '/compte', 'opening /compte once the Plan Réseau sign-up is paid');
    const card = await profile(page);
    check(card.includes(RESEAU) && /rôle : propriétaire/.test(card), `/compte of the Plan Réseau owner: the profile reads « ${card} »`);
    flow.reseauPage = page;
  });

  test('/compte/api on Plan Réseau: a key created, shown once, used, then revoked', STEP, async (t) => {
    if (!needs(t, 'reseauPage')) return;
    const page = flow.reseauPage;
    if (!(await open(t, page, { path: '/compte/api', expect: 200 }))) return;
    check(await textOf(page, 'section:has(#cles)') === 'Vos clés Aucune clé pour le moment.',
      `/compte/api of a new Plan Réseau organisation: the keys read « ${await textOf(page, 'section:has(#cles)')} »`);
    await audit(t, page, 'api (aucune clé)');
    const form = page.locator('form[action="/compte/api"]');
    const create = form.getByRole('button', { name: 'Créer la clé' });

    // No name: the form says so (400).
    let status = await submit(page, create);
    check(status === 400 && await page.locator('#erreurs[role=alert]').count() === 1 && await page.locator('#nom').getAttribute('aria-invalid') === 'true',
      `/compte/api, a key without a name: answered ${status}, expected 400 with an error summary and the field aria-invalid${await shown(page)}`);
    await audit(t, page, 'api (nom manquant)', { reopen: false });

    await fill(form, { nom: 'Site de la paroisse' });
    status = await submit(page, create);
    check(status === 200 && pathOf(page) === '/compte/api', `/compte/api, creating « Site de la paroisse »: ${pathOf(page)} answered ${status}${await shown(page)}`);
    const secretField = page.locator('#cle-creee input#secret[readonly]');
    check(await secretField.count() === 1, `/compte/api after creating a key: no read-only field #secret in #cle-creee${await shown(page)}`);
    const secret = await secretField.inputValue();
    check(/^nanoclip_live_[0-9a-f]{64}$/.test(secret), `/compte/api: the key shown is « ${secret} », expected nanoclip_live_ and 64 hexadecimal digits`);
    check((await textOf(page, '#cle-creee')).startsWith('Clé «\u202fSite de la paroisse\u202f» créée.'), `/compte/api after creating a key: the notice reads « ${await textOf(page, '#cle-creee')} »`);
    check(await page.getByRole('button', { name: 'Copier la clé' }).isVisible(), '/compte/api after creating a key: no visible « Copier la clé » button (JavaScript on)');
    let line = await textOf(page, '#liste-cles > li');
    check(line.includes('Site de la paroisse') && line.includes(secret.slice(0, 18)) && !line.includes(secret) && line.includes('jamais') && line.includes('Active'),
      `/compte/api: the key's line reads « ${line} », expected its name, its first 18 characters (not the whole key), « jamais » and « Active »`);
    await audit(t, page, 'api (clé créée)', { reopen: false });
    await t.test('keyboard: the key, its copy button, the form and the revocation reached by Tab, focus shown', async () => {
      const wanted = ['#secret', 'button[data-copier]', '#nom', 'form[action="/compte/api"] button[type=submit]', 'form[action$="/revocation"] button'];
      const walked = await tabWalk(page, ['a.skip-link', ...wanted]);
      check(walked[0]?.matches['a.skip-link'], `/compte/api: the first Tab reaches ${walked[0]?.path}, expected the skip link`);
      const missed = wanted.filter((sel) => !walked.some((f) => f.matches[sel]));
      check(missed.length === 0, `/compte/api: Tab never reaches ${missed.join(', ')} (reached: ${walked.map((f) => f.path).join(', ')})`);
      const bad = walked.slice(1).filter((f) => !f.onScreen || !f.indicator);
      check(bad.length === 0, `/compte/api: focused without a visible focus indicator or off screen: ${bad.map((f) => `${f.path} « ${f.name} »`).join('; ')}`);
    });

    // The key works; the page never shows it again, and notes its use.
    const api = () => page.context().request.get(url('/api/v1/solde'), { headers: { Authorization: `Bearer ${secret}` }, maxRedirects: 0 });
    let answer = await api();
    check(answer.status() === 200, `GET /api/v1/solde with the new key answered ${answer.status()}: ${(await answer.text()).slice(0, 200)}`);
    if (!(await open(t, page, { path: '/compte/api', expect: 200 }))) return;
    check(!(await page.content()).includes(secret), '/compte/api shows the key again after it was created');
    line = await textOf(page, '#liste-cles > li');
    check(/dernière utilisation\u202f: le \d/.test(line), `/compte/api after the key was used: its line reads « ${line} », expected « dernière utilisation : le … »`);
    await audit(t, page, 'api (clé utilisée)');

    // Revoked: the API refuses it.
    const revoke = page.getByRole('button', { name: /^Révoquer la clé «\s*Site de la paroisse\s*»$/ });
    status = await submit(page, revoke);
    // Asked first: what stops working, then the same button to confirm (or « Annuler »).
    check(status === 200 && (await textOf(page, 'h1')) === 'Révoquer la clé «\u202fSite de la paroisse\u202f»\u202f?',
      `revoking the key: the confirmation reads « ${await textOf(page, 'h1')} » (HTTP ${status})`);
    check((await api()).status() === 200, 'the key stopped working before the revocation was confirmed');
    await audit(t, page, 'api (révocation à confirmer)', { reopen: false });
    status = await submit(page, page.getByRole('button', { name: /^Révoquer la clé «\s*Site de la paroisse\s*»$/ }));
    check(status === 200 && new URL(page.url()).pathname === '/compte/api' && new URL(page.url()).searchParams.get('revoquee'),
      `revoking the key: landed on ${pathOf(page)} (HTTP ${status}), expected /compte/api?revoquee=…`);
    check((await textOf(page, '#cle-revoquee')) === 'Clé «\u202fSite de la paroisse\u202f» révoquée\u202f: elle ne permet plus aucune requête.',
      `/compte/api after revoking: the notice reads « ${await textOf(page, '#cle-revoquee')} »`);
    line = await textOf(page, '#liste-cles > li');
    check(line.includes('Révoquée le') && await page.locator('#liste-cles form').count() === 0,
      `/compte/api after revoking: the line reads « ${line} », expected « Révoquée le … » and no revocation button`);
    answer = await api();
    check(answer.status() === 401, `GET /api/v1/solde with the revoked key answered ${answer.status()}, expected 401`);
    await audit(t, page, 'api (clé révoquée)');
    flow.apiDone = true;
  });

  test('JavaScript off: /compte/api creates and revokes a key with plain forms', STEP, async (t) => {
    if (!needs(t, 'reseauPage')) return;
    const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP });
    try {
      await nojs.addCookies(await flow.reseauContext.cookies());
      const page = await nojs.newPage();
      if (!(await open(t, page, { path: '/compte/api', expect: 200 }))) return;
      const form = page.locator('form[action="/compte/api"]');
      check(((await form.getAttribute('method')) || '').toLowerCase() === 'post', '/compte/api: the form is not method="post"');
      await fill(form, { nom: 'Application mobile' });
      let status = await submit(page, form.getByRole('button', { name: 'Créer la clé' }));
      const secret = await page.locator('#secret').inputValue().catch(() => '');
      check(status === 200 && secret.startsWith('nanoclip_live_') && await page.locator('#secret').isVisible(),
        `/compte/api without JavaScript: creating a key answered ${status} and shows « ${secret} »${await shown(page)}`);
      check(!(await page.getByRole('button', { name: 'Copier la clé' }).isVisible()), '/compte/api without JavaScript: « Copier la clé » is shown, and cannot work');
      status = await submit(page, page.getByRole('button', { name: /^Révoquer la clé «\s*Application mobile\s*»$/ }));
      check(status === 200 && (await textOf(page, 'h1')).startsWith('Révoquer la clé'), `/compte/api without JavaScript: revoking asked nothing first (HTTP ${status})${await shown(page)}`);
      status = await submit(page, page.getByRole('button', { name: /^Révoquer la clé «\s*Application mobile\s*»$/ }));
      check(status === 200 && (await textOf(page, '#cle-revoquee')).startsWith('Clé «\u202fApplication mobile\u202f» révoquée'),
        `/compte/api without JavaScript: revoking answered ${status}${await shown(page)}`);
    } finally {
      await nojs.close();
    }
  });

  test('/compte/api on Plan Église: the API is Plan Réseau\'s', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/compte/api', expect: 200 }))) return;
    const main = await textOf(page, 'main');
    check(/Elle est réservée au Plan Réseau\./.test(main) && await page.locator('form[action="/compte/api"]').count() === 0,
      `/compte/api on Plan Église: expected « Elle est réservée au Plan Réseau. » and no form; the page reads « ${main.slice(0, 300)} »`);
    await audit(t, page, 'api (Plan Église)');
  });

  /** Tab through `page` (reloaded at `at`): the skip link first, every selector of `wanted` reached, focus shown and on screen. */
  async function keyboard(t, page, at, wanted) {
    await t.test(`keyboard: ${at}, ${wanted.length} controls reached by Tab, focus shown`, async () => {
      // Reopened, so that the first Tab starts from the top (not from a #fragment's target).
      await page.goto(url(at), { waitUntil: 'load' });
      const walked = await tabWalk(page, ['a.skip-link', ...wanted]);
      check(walked[0]?.matches['a.skip-link'], `${at}: the first Tab reaches ${walked[0]?.path}, expected the skip link`);
      const missed = wanted.filter((sel) => !walked.some((f) => f.matches[sel]));
      check(missed.length === 0, `${at}: Tab never reaches ${missed.join(', ')} (reached: ${walked.map((f) => f.path).join(', ')})`);
      const bad = walked.slice(1).filter((f) => !f.onScreen || !f.indicator);
      check(bad.length === 0, `${at}: focused without a visible focus indicator or off screen: ${bad.map((f) => `${f.path} « ${f.name} »`).join('; ')}`);
    });
  }

  /** At 360 px, with the cookies of `context`: each selector of `sels` is on the first screen (740 px). */
  async function firstScreen(t, context, at, sels, what) {
    await t.test(`360 px: ${what} on the first screen of ${at}`, async () => {
      await phone.clearCookies();
      await phone.addCookies(await context.cookies());
      const small = await phone.newPage();
      try {
        await small.goto(url(at), { waitUntil: 'load' });
        const place = await small.evaluate((sels) => sels.map((s) => {
          const r = document.querySelector(s)?.getBoundingClientRect();
          return { s, bottom: r ? r.bottom : null };
        }), sels);
        const below = place.filter((p) => p.bottom === null || p.bottom > PHONE.height);
        check(below.length === 0, `${at} at 360 px: ${below.map((p) => `${p.s} ${p.bottom === null ? 'missing' : `ends at ${Math.round(p.bottom)} px`}`).join(', ')}, below the first screen (${PHONE.height} px)`);
      } finally {
        await small.close();
      }
    });
  }

  /** The order id of /paiement-test/ID or /achats/retour/ID. */
  const orderOf = (page) => new URL(page.url()).pathname.split('/').pop();

  /** The balance the dashboard shows, as a number. */
  async function balanceOf(page) {
    await page.goto(url('/tableau-de-bord'), { waitUntil: 'load' });
    return Number((await textOf(page, '#disponible')).replace(/\D/g, ''));
  }

  // Buying credits, as the Plan Église owner (3 credits left): the catalogue, the confirmation
  // (HT, TVA, TTC, the credits' last day), the built-in test provider's page, the return page with
  // the new balance, the invoice; then a payment the provider declines (fonds insuffisants).
  test('achats: a pack bought end to end (approved), its invoice', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'captured')) return;
    const page = ownerPage;
    const before = await balanceOf(page);
    if (!(await open(t, page, { path: '/achats', expect: 200 }))) return;
    const packs = await page.locator('#packs > li').count();
    check(packs >= 3, `/achats: ${packs} packs listed, expected the catalogue's (at least 3)`);
    check((await textOf(page, '#packs')).includes('Pack 10 crédits'), `/achats: no « Pack 10 crédits » in « ${await textOf(page, '#packs')} »`);
    await audit(t, page, 'achats (catalogue)');
    await keyboard(t, page, '/achats', ['a[href="/achats/pack-10"]', 'a[href="/achats/historique"]']);

    await Promise.all([page.waitForNavigation(), page.locator('a[href="/achats/pack-10"]').click()]);
    check(pathOf(page) === '/achats/pack-10', `« Acheter » (Pack 10 crédits) leads to ${pathOf(page)}`);
    const summary = await textOf(page, '#recapitulatif');
    for (const part of ['10\u00a0crédits', '10,00\u00a0€', '2,00\u00a0€', '12,00\u00a0€', 'inclus']) {
      check(summary.includes(part), `/achats/pack-10: the summary reads « ${summary} », expected « ${part} » (HT 10,00 €, TVA 2,00 €, TTC 12,00 €, the last day)`);
    }
    const form = page.locator('form[action="/achats/pack-10"]');
    check(((await form.getAttribute('method')) || '').toLowerCase() === 'post', '/achats/pack-10: the form is not method="post"');
    for (const name of ['csrf', 'cle', 'prix']) {
      check(await form.locator(`input[type=hidden][name=${name}]`).count() === 1, `/achats/pack-10: the form has no hidden ${name}`);
    }
    check(await form.locator('input[name=prix]').inputValue() === '1200', '/achats/pack-10: prix is not 1200 (cents)');
    await audit(t, page, 'achats (confirmation)');
    await firstScreen(t, owner, '/achats/pack-10', ['#a-payer strong', 'form[action="/achats/pack-10"] button[type=submit]'], 'the price to pay and « Payer »');
    await keyboard(t, page, '/achats/pack-10', ['form[action="/achats/pack-10"] button[type=submit]', 'a[href="/achats"]']);

    let status = await submit(page, page.getByRole('button', { name: /^Payer 12,00\s€$/ }));
    check(status === 200 && new URL(page.url()).pathname.startsWith('/paiement-test/'),
      `« Payer 12,00 € »: landed on ${pathOf(page)} (HTTP ${status}), expected /paiement-test/…${await shown(page)}`);
    const order = orderOf(page);
    check((await textOf(page, 'main')).includes('12,00\u00a0€'), `/paiement-test/${order}: the amount 12,00 € is not shown`);
    await audit(t, page, 'paiement de test');
    await keyboard(t, page, `/paiement-test/${order}`, ['button[value=approuver]', 'button[value=refuser]', 'button[value=fonds-insuffisants]', 'button[value=carte-expiree]', 'button[value=sans-reponse]']);

    status = await submit(page, page.getByRole('button', { name: 'Approuver le paiement' }));
    await expectAt(page, status, 200, `/achats/retour/${order}`, 'approving the test payment');
    const result = await textOf(page, '#resultat');
    check(result.startsWith(`Paiement accepté. 10\u00a0crédits ajoutés à votre solde. Nouveau solde\u202f: ${before + 10}\u00a0crédits`) ||
      result.startsWith(`Paiement accepté. 10\u00a0crédits ajoutés à votre solde. Nouveau solde\u00a0: ${before + 10}\u00a0crédits`),
    `/achats/retour/${order}: the result reads « ${result} », expected « Paiement accepté. 10 crédits ajoutés à votre solde. Nouveau solde : ${before + 10} crédits »`);
    const invoiceLink = page.locator('#resultat a[href^="/achats/factures/"]');
    check(await invoiceLink.count() === 1, `/achats/retour/${order}: no link to the invoice${await shown(page)}`);
    await audit(t, page, 'achats (paiement accepté)');
    await keyboard(t, page, `/achats/retour/${order}`, ['#resultat a[href^="/achats/factures/"]', 'a[href="/achats/historique"]']);

    const invoice = await invoiceLink.getAttribute('href');
    await Promise.all([page.waitForNavigation(), page.locator(`#resultat a[href="${invoice}"]`).click()]);
    check(pathOf(page) === invoice, `the invoice link leads to ${pathOf(page)}, expected ${invoice}`);
    check(await textOf(page, '#total-ht') === '10,00\u00a0€' && await textOf(page, '#total-tva') === '2,00\u00a0€' && await textOf(page, '#total-ttc') === '12,00\u00a0€',
      `${invoice}: the totals read HT « ${await textOf(page, '#total-ht')} », TVA « ${await textOf(page, '#total-tva')} », TTC « ${await textOf(page, '#total-ttc')} »`);
    check((await textOf(page, 'main')).includes(ORGANISATION), `${invoice}: the buyer ${ORGANISATION} is not named`);
    await audit(t, page, 'facture');
    await keyboard(t, page, invoice, ['a#pdf']);
    // Its PDF: downloaded from the page, rendered by poppler, its text read back.
    await checkInvoicePdf(t, page, invoice, ['10,00\u00a0€', '2,00\u00a0€', '12,00\u00a0€']);
    flow.invoice = invoice;
    flow.bought = before + 10;
  });

  test('achats: a payment declined (fonds insuffisants) adds nothing; the orders and invoices', STEP, async (t) => {
    if (!needs(t, 'bought')) return;
    const page = ownerPage;
    if (!(await open(t, page, { path: '/achats/pack-10', expect: 200 }))) return;
    let status = await submit(page, page.getByRole('button', { name: /^Payer 12,00\s€$/ }));
    check(status === 200 && new URL(page.url()).pathname.startsWith('/paiement-test/'), `« Payer » again: landed on ${pathOf(page)} (HTTP ${status})`);
    const order = orderOf(page);
    status = await submit(page, page.getByRole('button', { name: 'Fonds insuffisants' }));
    await expectAt(page, status, 200, `/achats/retour/${order}`, 'the test provider answering « fonds insuffisants »');
    const result = await textOf(page, '#resultat');
    check(/^Paiement refusé\s?: fonds insuffisants\. Rien n’a été débité/.test(result),
      `/achats/retour/${order} after « fonds insuffisants »: the result reads « ${result} »`);
    check(await page.locator('#resultat a[href="/achats/pack-10"]').count() === 1, `/achats/retour/${order}: no link to try again (/achats/pack-10)`);
    await audit(t, page, 'achats (paiement refusé)');
    check(await balanceOf(page) === flow.bought, `after a declined payment the balance is ${await balanceOf(page)}, expected ${flow.bought} (unchanged)`);

    if (!(await open(t, page, { path: '/achats/historique', expect: 200 }))) return;
    const rows = await page.locator('#commandes > li, #commandes tbody tr').allInnerTexts();
    // The refused pack, the paid pack, and the first period paid at sign-up.
    check(rows.length === 3, `/achats/historique: ${rows.length} orders listed, expected 3 (« ${rows.join(' | ')} »)`);
    const [declined, paid, signUp] = rows.map((r) => r.replace(/\s+/g, ' '));
    check(/première période/.test(signUp) && /Payée/.test(signUp), `/achats/historique: the oldest order reads « ${signUp} », expected the first period, paid`);
    check(/Paiement refusé/.test(declined) && /Payée/.test(paid) && paid.includes(flow.invoice.split('/').pop()),
      `/achats/historique: the orders read « ${declined} » and « ${paid} », expected the refused one first, then the paid one with its invoice`);
    await audit(t, page, 'achats (historique)');
    await keyboard(t, page, '/achats/historique', [`a[href="${flow.invoice}"]`, `a[href="${flow.invoice}.pdf"]`]);
    check(await page.getByRole('link', { name: `PDF de la facture ${flow.invoice.split('/').pop()}` }).count() === 1,
      `/achats/historique: no link named « PDF de la facture ${flow.invoice.split('/').pop()} »`);
    flow.declined = true;
  });

  test('JavaScript off: a pack bought with plain forms (carte expirée), the history and the invoice', STEP, async (t) => {
    if (!needs(t, 'bought')) return;
    const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP });
    try {
      await nojs.addCookies(await owner.cookies());
      const page = await nojs.newPage();
      if (!(await open(t, page, { path: '/achats', expect: 200 }))) return;
      await Promise.all([page.waitForNavigation(), page.locator('a[href="/achats/pack-30"]').click()]);
      let status = await submit(page, page.getByRole('button', { name: /^Payer 33,00\s€$/ }));
      check(status === 200 && new URL(page.url()).pathname.startsWith('/paiement-test/'), `without JavaScript, « Payer 33,00 € »: landed on ${pathOf(page)} (HTTP ${status})`);
      const order = orderOf(page);
      status = await submit(page, page.getByRole('button', { name: 'Carte expirée' }));
      await expectAt(page, status, 200, `/achats/retour/${order}`, 'without JavaScript, « Carte expirée »');
      check(/^Paiement refusé\s?: carte expirée\./.test(await textOf(page, '#resultat')), `without JavaScript, « Carte expirée »: the result reads « ${await textOf(page, '#resultat')} »`);
      if (!(await open(t, page, { path: '/achats/historique', expect: 200 }))) return;
      await Promise.all([page.waitForNavigation(), page.locator(`a[href="${flow.invoice}"]`).first().click()]);
      check(pathOf(page) === flow.invoice && await textOf(page, '#total-ttc') === '12,00\u00a0€', `without JavaScript, the invoice link leads to ${pathOf(page)}`);
    } finally {
      await nojs.close();
    }
  });

  // The Plan Réseau owner (signed up on that plan): what a downgrade would change, scheduled, then
  // cancelled. Done before the Église organisation moves to Plan Réseau (both pages are then seen).
  test('abonnement on Plan Réseau: « Voir ce qui changera », the downgrade scheduled, then cancelled', STEP, async (t) => {
    if (!needs(t, 'reseauPage')) return;
    const page = flow.reseauPage;
    if (!(await open(t, page, { path: '/abonnement', expect: 200 }))) return;
    check((await textOf(page, '#plan-actuel')).includes('Plan Réseau'), `/abonnement of the Plan Réseau owner: the plan reads « ${await textOf(page, '#plan-actuel')} »`);
    check((await textOf(page, '#prochain')).startsWith('Prochain renouvellement'), `/abonnement on Plan Réseau: « ${await textOf(page, '#prochain')} »`);
    await audit(t, page, 'abonnement (Plan Réseau)');
    await keyboard(t, page, '/abonnement', ['a[href^="/abonnement?apercu=eglise"]']);

    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: /Voir ce qui changera/ }).click()]);
    check(new URL(page.url()).searchParams.get('apercu') === 'eglise', `« Voir ce qui changera » leads to ${pathOf(page)}, expected /abonnement?apercu=eglise`);
    const preview = await textOf(page, '#apercu');
    check(/crédits? expirer/.test(preview) && /fonctions perdues/.test(preview) && /générations par jour \(au lieu de/.test(preview),
      `/abonnement?apercu=eglise: the preview reads « ${preview} »`);
    await audit(t, page, 'abonnement (aperçu du retour au Plan Église)');
    await keyboard(t, page, '/abonnement?apercu=eglise', ['#apercu button[type=submit]']);

    let status = await submit(page, page.getByRole('button', { name: 'Programmer le retour au Plan Église' }));
    await expectAt(page, status, 200, '/abonnement?info=programme', '« Programmer le retour au Plan Église »');
    check(/passera au Plan Église/.test(await textOf(page, '#prochain')), `/abonnement?info=programme: « ${await textOf(page, '#prochain')} »`);
    await audit(t, page, 'abonnement (retour programmé)');
    await keyboard(t, page, '/abonnement?info=programme', ['form[action="/abonnement/annulation"] button']);

    status = await submit(page, page.locator('form[action="/abonnement/annulation"] button'));
    await expectAt(page, status, 200, '/abonnement?info=annule', 'cancelling the scheduled change');
    check((await textOf(page, '#prochain')).startsWith('Prochain renouvellement'), `/abonnement?info=annule: « ${await textOf(page, '#prochain')} »`);
    await audit(t, page, 'abonnement (changement annulé)');
    flow.downgradeDone = true;
  });

  test('JavaScript off: the downgrade preview, scheduled and cancelled with plain forms', STEP, async (t) => {
    if (!needs(t, 'reseauPage')) return;
    const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: DESKTOP });
    try {
      await nojs.addCookies(await flow.reseauContext.cookies());
      const page = await nojs.newPage();
      if (!(await open(t, page, { path: '/abonnement', expect: 200 }))) return;
      await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: /Voir ce qui changera/ }).click()]);
      let status = await submit(page, page.getByRole('button', { name: 'Programmer le retour au Plan Église' }));
      await expectAt(page, status, 200, '/abonnement?info=programme', 'without JavaScript, scheduling the downgrade');
      status = await submit(page, page.locator('form[action="/abonnement/annulation"] button'));
      await expectAt(page, status, 200, '/abonnement?info=annule', 'without JavaScript, cancelling it');
    } finally {
      await nojs.close();
    }
  });

  test('abonnement on Plan Église: the move to Plan Réseau, paid now (prorated) through the test provider', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'captured')) return;
    const page = ownerPage;
    const before = await balanceOf(page);
    if (!(await open(t, page, { path: '/abonnement', expect: 200 }))) return;
    check((await textOf(page, '#plan-actuel')).includes('Plan Église'), `/abonnement of the Plan Église owner: the plan reads « ${await textOf(page, '#plan-actuel')} »`);
    const prorata = await textOf(page, '#prorata');
    check(/^\d+,\d\d\u00a0€$/.test(prorata), `/abonnement on Plan Église: the prorated amount reads « ${prorata} »`);
    const credits = Number((/(\d+)\u00a0crédits en plus/.exec(await textOf(page, 'section:has(#monter)')) || [])[1]);
    check(credits > 0, `/abonnement on Plan Église: no « N crédits en plus » in « ${await textOf(page, 'section:has(#monter)')} »`);
    await audit(t, page, 'abonnement (Plan Église)');
    await firstScreen(t, owner, '/abonnement', ['#plan-actuel', '#prochain'], 'the plan and its next renewal');
    const upgrade = 'form[action="/abonnement/changement"] button[type=submit]';
    await keyboard(t, page, '/abonnement', [upgrade]);

    let status = await submit(page, page.locator(upgrade));
    check(status === 200 && new URL(page.url()).pathname.startsWith('/paiement-test/'), `« Passer au Plan Réseau »: landed on ${pathOf(page)} (HTTP ${status})${await shown(page)}`);
    const order = orderOf(page);
    check((await textOf(page, 'main')).includes(prorata), `/paiement-test/${order}: the prorated amount ${prorata} is not shown`);
    await audit(t, page, 'paiement de test (changement de plan)');
    status = await submit(page, page.getByRole('button', { name: 'Approuver le paiement' }));
    await expectAt(page, status, 200, `/achats/retour/${order}`, 'approving the upgrade');
    const result = await textOf(page, '#resultat');
    check(result.startsWith('Paiement accepté.') && result.includes(`${before + credits}\u00a0crédits`),
      `/achats/retour/${order} after the upgrade: the result reads « ${result} », expected « Paiement accepté. » and ${before + credits} crédits`);
    await audit(t, page, 'achats (changement de plan payé)');
    if (!(await open(t, page, { path: '/abonnement', expect: 200 }))) return;
    check((await textOf(page, '#plan-actuel')).includes('Plan Réseau'), `/abonnement after the upgrade: the plan reads « ${await textOf(page, '#plan-actuel')} »`);
    await audit(t, page, 'abonnement (passé au Plan Réseau)');
    // The orders now hold the first period, a paid pack, two refusals and the change of plan:
    // the widest state.
    if (!(await open(t, page, { path: '/achats/historique', expect: 200 }))) return;
    const orders = await page.locator('#commandes > li, #commandes tbody tr').count();
    check(orders === 5, `/achats/historique after the upgrade: ${orders} orders listed, expected 5`);
    await audit(t, page, 'achats (historique, avec le changement de plan)');
    flow.upgraded = true;
  });

  test('French typography of the signed-in pages: the shared checker, with each owner\'s cookies', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'history')) return;
    const here = path.dirname(fileURLToPath(import.meta.url));
    const tool = path.resolve(here, '..', '..', '..', 'shared', 'tools', 'check-typography.py');
    if (!existsSync(tool)) return skip(t, `${tool} not found (the shared tools live in ../shared/tools next to the repository)`);
    // The checker follows links to paths it has not read: page 2 of the history is not among them.
    const crawls = [{ who: 'the Plan Église owner', context: owner, reach: ['/tableau-de-bord', '/credits/historique', '/generations', '/compte/api', '/achats', '/abonnement'] }];
    if (flow.reseauContext) crawls.push({ who: 'the Plan Réseau owner', context: flow.reseauContext, reach: ['/tableau-de-bord', '/generations', '/compte/api', '/achats', '/abonnement'] });
    for (const { who, context, reach } of crawls) {
      await t.test(`typography: signed in as ${who}`, async () => {
        const cookies = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
        const visitedFile = path.join(tmpdir(), `nanoclip-typography-${RUN}.txt`);
        const { code, out } = await new Promise((resolve) => {
          execFile('python3', [path.join(here, 'with-cookies.py'), tool, '--url', BASE],
            { env: { ...process.env, NANOCLIP_COOKIES: cookies, NANOCLIP_VISITED: visitedFile }, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
            (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, out: `${stdout}${stderr}`.trim() }));
        });
        const visited = existsSync(visitedFile) ? readFileSync(visitedFile, 'utf8').split('\n').filter(Boolean).map((u) => { const x = new URL(u); return x.pathname + x.search; }) : [];
        rmSync(visitedFile, { force: true });
        console.log(`typography, signed in as ${who}: ${out.split('\n').pop()}`);
        const missed = reach.filter((p) => !visited.includes(p));
        check(missed.length === 0, `the checker's crawl signed in as ${who} did not reach ${missed.join(', ')} (it read ${visited.length} URLs); its output:\n${out}`);
        check(code === 0, `French typography of the pages reached from / signed in as ${who} (exit ${code}):\n${out}`);
      });
    }
  });

  // The crawl never reaches the answer to a POST nor a notice after a redirect: every page state the
  // walk met goes through the same checker's rules (typography-of.py loads them from it unchanged).
  test('French typography of every page state met: the shared checker\'s rules on the pages saved', STEP, async (t) => {
    check(seen.length > 0, 'no account page was reached');
    const here = path.dirname(fileURLToPath(import.meta.url));
    const tool = path.resolve(here, '..', '..', '..', 'shared', 'tools', 'check-typography.py');
    if (!existsSync(tool)) return skip(t, `${tool} not found (the shared tools live in ../shared/tools next to the repository)`);
    const dir = mkdtempSync(path.join(tmpdir(), 'nanoclip-typography-'));
    try {
      const args = seen.map((page, i) => {
        const file = path.join(dir, `page-${i + 1}.html`);
        writeFileSync(file, page.html);
        return `${page.label}=${file}`;
      });
      const { code, out } = await new Promise((resolve) => {
        execFile('python3', [path.join(here, 'typography-of.py'), tool, ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, out: `${stdout}${stderr}`.trim() }));
      });
      console.log(`typography of the walk's pages: ${out.split('\n').pop()}`);
      check(code === 0, `French typography of the page states met in the walk (exit ${code}):\n${out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('HTML of every account page met: W3C Nu checker, no error', STEP, async (t) => {
    check(seen.length > 0, 'no account page was reached');
    const { controlErrors, errors } = await checkHtml(seen.map((page) => page.html));
    check(controlErrors > 0, 'vnu found no error in the control page: its 0 would mean nothing');
    for (const [i, page] of seen.entries()) {
      await t.test(`html: ${page.label}`, () => {
        check(errors[i].length === 0, () => `${page.label}: ${errors[i].length} HTML error(s)\n${errors[i].describe}`);
      });
    }
  });
});
