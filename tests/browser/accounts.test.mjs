// Accounts, walked in a real browser the way a church's staff would: sign up, open the activation
// e-mail, see the address on /compte, log out, log in, forget the password, follow the reset e-mail,
// log in with the new password, invite a member, and the member opens the invitation in another
// browser and lands on /compte. The e-mails are the .eml files the portal writes in development
// (mail.mjs). Then the owner's dashboard and credit history, once the operator has given the
// organisation a history (`nanoclip credits adjust`, operator.mjs): low balance, credits about to
// expire, two pages of movements. Every page met on the way goes through axe-core (WCAG 2.2 A/AA,
// colour contrast in dark mode too), again on a 360 px phone (no horizontal scroll, axe), and the
// W3C Nu checker. The login form, the dashboard and the history's filters are also used with
// JavaScript off; the credit pages are walked by keyboard, and the shared typography checker
// crawls the portal signed in.
//
// The steps depend on each other: when one fails, the next ones are reported as skipped with the
// reason. Addresses are unique per run (the development database persists).
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AXE_TAGS, BASE, CSS_PATH_FN, Failure, OVERFLOW_FN, check, describeViolations, launch, open, skip, tabWalk, url } from './support.mjs';
import { MAIL_DIR, waitForLink } from './mail.mjs';
import { adjust, parisDay } from './operator.mjs';
import { checkHtml } from './vnu.mjs';

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const OWNER = `proprietaire-${RUN}@exemple.fr`;
const MEMBER = `membre-${RUN}@exemple.fr`;
const ORGANISATION = `Église d’essai ${RUN}`;
// Long phrases, none of them made of the organisation's name, the address or church words.
const PASSWORD = 'cloche verte sous la pluie 7';
const NEW_PASSWORD = 'lanterne bleue au fond du jardin 42';
const MEMBER_PASSWORD = 'violon doux du matin clair 3';

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
  after(async () => { await browser?.close(); });

  /**
   * axe on the page as it is (light, then colour contrast in dark mode), then the same page on
   * the phone: reopened there with the same cookies (GET pages, `status` is what it must answer),
   * or, for the answer to a POST (`reopen: false`), this page resized to 360 px. `details: true`
   * opens every <details> first (what a reader unfolds is checked too).
   */
  async function audit(t, page, label, { status = 200, reopen = true, details = false } = {}) {
    const at = pathOf(page);
    const where = `${label} (${new URL(page.url()).pathname})`;
    // Kept for the Nu HTML checker at the end: the server's bytes for a GET page (fetched again
    // with the same cookies), the document as shown for the answer to a POST.
    let html;
    if (reopen) {
      const res = await page.context().request.get(url(at), { maxRedirects: 0 });
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
    await expectAt(page, res?.status(), 200, '/compte', 'pressing « Activer mon compte »');
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
    const csv = await page.context().request.get(url('/credits/historique.csv'));
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
      await form.getByLabel('Du').fill(parisDay(0));
      const [res] = await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: 'Filtrer' }).click()]);
      const u = new URL(page.url());
      check(res?.status() === 200 && u.pathname === '/credits/historique' && u.searchParams.get('type') === 'ajustement' && u.searchParams.get('du') === parisDay(0),
        `the filters sent without JavaScript led to ${pathOf(page)} (HTTP ${res?.status()}), expected /credits/historique?type=ajustement&du=${parisDay(0)}`);
      const kinds = await page.locator('#mouvements tbody tr td:nth-child(2)').allInnerTexts();
      check(kinds.length === 50 && kinds.every((k) => k.trim() === 'Ajustement'),
        `/credits/historique?type=ajustement: expected the 50 adjustments, got ${kinds.length} lines (${[...new Set(kinds)].join(', ')})`);
      check(await form.getByLabel('Ajustements').isChecked(), '/credits/historique?type=ajustement: the box « Ajustements » is not kept checked');
    } finally {
      await nojs.close();
    }
  });

  test('French typography of the signed-in pages: the shared checker, with the owner\'s cookies', STEP, async (t) => {
    if (!needs(t, 'ownerSignedIn', 'history')) return;
    const here = path.dirname(fileURLToPath(import.meta.url));
    const tool = path.resolve(here, '..', '..', '..', 'shared', 'tools', 'check-typography.py');
    if (!existsSync(tool)) return skip(t, `${tool} not found (the shared tools live in ../shared/tools next to the repository)`);
    const cookies = (await owner.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const visitedFile = path.join(tmpdir(), `nanoclip-typography-${RUN}.txt`);
    const { code, out } = await new Promise((resolve) => {
      execFile('python3', [path.join(here, 'with-cookies.py'), tool, '--url', BASE],
        { env: { ...process.env, NANOCLIP_COOKIES: cookies, NANOCLIP_VISITED: visitedFile }, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, out: `${stdout}${stderr}`.trim() }));
    });
    const visited = existsSync(visitedFile) ? readFileSync(visitedFile, 'utf8').split('\n').filter(Boolean).map((u) => { const x = new URL(u); return x.pathname + x.search; }) : [];
    rmSync(visitedFile, { force: true });
    console.log(`typography, signed in as the owner: ${out.split('\n').pop()}`);
    // The checker follows links to paths it has not read: page 2 of the history is not among them.
    const missed = ['/tableau-de-bord', '/credits/historique'].filter((p) => !visited.includes(p));
    check(missed.length === 0, `the checker's signed-in crawl did not reach ${missed.join(', ')} (it read ${visited.length} URLs); its output:\n${out}`);
    check(code === 0, `French typography of the pages reached from / signed in as the owner (exit ${code}):\n${out}`);
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
