// Accounts, walked in a real browser the way a church's staff would: sign up, open the activation
// e-mail, see the address on /compte, log out, log in, forget the password, follow the reset e-mail,
// log in with the new password, invite a member, and the member opens the invitation in another
// browser and lands on /compte. The e-mails are the .eml files the portal writes in development
// (mail.mjs). Every account page met on the way goes through axe-core (WCAG 2.2 A/AA, colour
// contrast in dark mode too) and again on a 360 px phone (no horizontal scroll, axe). The login
// form is also used with JavaScript off.
//
// The steps depend on each other: when one fails, the next ones are reported as skipped with the
// reason. Addresses are unique per run (the development database persists).
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { AXE_TAGS, BASE, CSS_PATH_FN, Failure, OVERFLOW_FN, check, describeViolations, launch, open, skip, url } from './support.mjs';
import { MAIL_DIR, waitForLink } from './mail.mjs';
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
   * or, for the answer to a POST (`reopen: false`), this page resized to 360 px.
   */
  async function audit(t, page, label, { status = 200, reopen = true } = {}) {
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
        await phone.addCookies(await page.context().cookies());
        target = await phone.newPage();
        const res = await target.goto(url(at), { waitUntil: 'load', timeout: 30_000 });
        check(res?.status() === status && pathOf(target) === at,
          `${where} at 360 px: reopening ${at} answered ${res?.status()} at ${pathOf(target)}, expected ${status} at ${at}`);
      } else {
        await page.setViewportSize(PHONE);
      }
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
    await audit(t, ownerPage, 'tableau de bord (propriétaire)');
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
