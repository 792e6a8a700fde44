// The HTML of every page passes the W3C Nu HTML checker (npm `vnu-jar`, run with the installed
// Java) with no error: the pages of the list every part checks, plus the states a reader meets
// that have no URL of their own (a search without result or with a suggestion, a simulator form
// with a wrong value, the account forms, and forms sent with errors).
import { before, describe, test } from 'node:test';
import { check, pages, skip, url } from './support.mjs';
import { checkHtml } from './vnu.mjs';

// Pages in a state worth checking too, with the status they must answer.
const EXTRA_PAGES = [
  { path: '/aide/recherche?q=zzqxwv', expect: 200 },            // no result: top guides, contact
  { path: '/aide/recherche?q=credt%20expir', expect: 200 },      // « Vouliez-vous dire … ? »
  { path: '/aide/recherche', expect: 200 },                       // empty query
  { path: '/simulateur?type=video&duree=abc', expect: 400 },      // a wrong value, kept in the form
  { path: '/simulateur?type=image&format=pdf&plan=eglise', expect: 400 },
  { path: '/simulateur?type=mini-livre&pages=12&illustrations=riches&plan=reseau', expect: 200 },
  { path: '/simulateur?type=video&duree=10&resolution=4k&plan=eglise', expect: 200 },  // refused by the plan
  { path: '/simulateur?type=image&prompt=une%20parodie%20obsc%C3%A8ne%20de%20la%20c%C3%A8ne', expect: 200 },
  { path: '/contact?sujet=evenement&page=%2Faide%2Ftarifs', expect: 200 },
  { path: '/compte/connexion', expect: 200 },
  { path: '/compte/inscription', expect: 200 },
  { path: '/compte/mot-de-passe-oublie', expect: 200 },
  { path: '/compte/info?avis=verifiez', expect: 200 },
  { path: '/compte/info?avis=lien-invalide', expect: 410 },
];

// Forms sent with errors: [form page, action, fields, expected status].
const FORMS_WITH_ERRORS = [
  ['/compte/connexion', '/compte/connexion', { email: '', mot_de_passe: '' }, 400],
  ['/compte/inscription', '/compte/inscription',
    { organisation: 'Paroisse', email: 'pas-une-adresse', mot_de_passe: 'court', confirmation: 'autre', plan: 'eglise' }, 400],
  ['/contact', '/contact', { nom: '', email: 'x', sujet: 'evenement', message: '' }, 400],
];

/** Session cookie and CSRF token of a form page, like a browser that opened it. */
async function formSession(pagePath) {
  const res = await fetch(url(pagePath));
  const cookie = (res.headers.getSetCookie?.() || []).map((c) => c.split(';')[0]).join('; ');
  const html = await res.text();
  const token = html.match(/name="csrf" value="([^"]+)"/)?.[1];
  return { cookie, token };
}

describe('W3C Nu HTML checker: no error on any page', () => {
  const fetched = []; // { label, html, status, expect }
  let result = null; // checkHtml's answer for the pages that answered as expected
  let vnuError = null;

  before(async () => {
    for (const entry of [...(await pages()), ...EXTRA_PAGES]) {
      const res = await fetch(url(entry.path), { redirect: 'manual' });
      fetched.push({ label: entry.path, html: await res.text(), status: res.status, expect: entry.expect });
    }
    for (const [formPage, action, fields, expect] of FORMS_WITH_ERRORS) {
      const { cookie, token } = await formSession(formPage);
      const body = new URLSearchParams({ csrf: token || '', ...fields });
      const res = await fetch(url(action), {
        method: 'POST', body, redirect: 'manual',
        headers: { cookie, origin: new URL(url('/')).origin, 'content-type': 'application/x-www-form-urlencoded' },
      });
      fetched.push({ label: `POST ${action} (with errors)`, html: await res.text(), status: res.status, expect });
    }
    try {
      result = await checkHtml(fetched.map((f) => (f.status === f.expect ? f.html : '')));
    } catch (e) {
      vnuError = e;
    }
  });

  test('the checker ran, and finds an error in a broken control page', () => {
    check(!vnuError, () => `${vnuError.message}\n(Java 11+ is needed: apt-get install default-jre-headless)`);
    check(result.controlErrors > 0, 'vnu found no error in control.html (a <div> inside a <p>, no <title>): its 0 would mean nothing');
    console.log(`vnu: ${fetched.length} pages checked, ${result.controlErrors} error(s) in the control page as expected`);
  });

  test('every page', async (t) => {
    for (const [i, f] of fetched.entries()) {
      await t.test(f.label, () => {
        if (f.status === 404 && f.expect === 200) return skip(t, `${f.label} answers 404 (not served by the portal yet)`);
        check(f.status === f.expect, `${f.label}: answers HTTP ${f.status}, expected ${f.expect}`);
        check(result, 'vnu did not run');
        const errors = result.errors[i];
        check(errors.length === 0, () => `${f.label}: ${errors.length} HTML error(s)\n${errors.describe}`);
      });
    }
  });
});
