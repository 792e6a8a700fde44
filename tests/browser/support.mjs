// Shared by the browser tests: the portal's URL, the list of pages, Chromium, and the way a page
// the portal does not serve yet is skipped (visibly, never silently).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

export const BASE = (process.env.PORTAL_URL || '').replace(/\/+$/, '');
if (!BASE) {
  console.error('PORTAL_URL is not set: run through the portal, e.g. `scripts/with-portal tests/browser/run`');
  process.exit(2);
}

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// The guides of the public contract (PRODUCT.md), used when /sitemap.xml does not list them.
export const GUIDE_SLUGS = [
  'credits-et-limites', 'respect-et-ethique', 'depannage', 'guide-d-achat', 'tarifs',
  'prompts-ia', 'video', 'musique', 'mini-livres', 'faq', 'compte-et-abonnement',
];

// Pages that exist for every reader, beyond the sitemap. `expect` is the status the page must answer.
const FIXED_PAGES = [
  { path: '/', expect: 200 },
  { path: '/aide/recherche?q=credits%20expirent', expect: 200 },
  { path: '/simulateur', expect: 200 },
  { path: '/simulateur?type=video&duree=10&quantite=3&plan=eglise', expect: 200 },
  { path: '/contact', expect: 200 },
  { path: '/nexiste-pas', expect: 404 },
];

export const url = (path) => BASE + path;

/** Marks the test skipped; the reporter prints « ﹣ <test> # SKIPPED: <reason> ». */
export function skip(t, reason) {
  t.skip(`SKIPPED: ${reason}`);
}

/** Reads /sitemap.xml; returns { paths, note }. paths is empty when it does not answer 200 with URLs. */
async function sitemapPaths() {
  let res;
  try {
    res = await fetch(url('/sitemap.xml'), { redirect: 'follow' });
  } catch (e) {
    return { paths: [], note: `/sitemap.xml unreachable (${e.message})` };
  }
  if (res.status !== 200) return { paths: [], note: `/sitemap.xml answers ${res.status}` };
  const xml = await res.text();
  const locs = [...xml.matchAll(/<loc>\s*([^<]+?)\s*<\/loc>/g)].map((m) => m[1].replace(/&amp;/g, '&'));
  if (locs.length === 0) return { paths: [], note: '/sitemap.xml lists no <loc>' };
  // The sitemap holds absolute URLs on the public URL; test the same path on this portal.
  const paths = locs.map((loc) => {
    try {
      const u = new URL(loc, BASE);
      return u.pathname + u.search;
    } catch {
      return loc;
    }
  });
  return { paths, note: `/sitemap.xml lists ${paths.length} URLs` };
}

let pagesPromise;
/**
 * The pages to test, in a stable order: `/`, the sitemap's URLs (or, when the sitemap is missing
 * or empty, the 11 guides of the contract; the guides are added anyway if the sitemap forgets
 * one), the search, the simulator (empty and with an answer), the contact form and a 404 page.
 * NANOCLIP_BROWSER_PAGES="/,/contact" restricts the list (comma-separated paths).
 */
export function pages() {
  pagesPromise ??= (async () => {
    const { paths, note } = await sitemapPaths();
    const guides = GUIDE_SLUGS.map((s) => `/aide/${s}`);
    if (paths.length === 0) console.log(`pages: ${note}; falling back to the ${guides.length} guides of the contract`);
    else console.log(`pages: ${note}`);
    const list = [];
    const seen = new Set();
    const add = (path, expect = 200) => {
      if (!seen.has(path)) { seen.add(path); list.push({ path, expect }); }
    };
    add('/');
    for (const p of paths) add(p);
    for (const p of guides) add(p);
    for (const p of FIXED_PAGES) add(p.path, p.expect);
    const only = (process.env.NANOCLIP_BROWSER_PAGES || '').split(',').map((s) => s.trim()).filter(Boolean);
    return only.length ? list.filter((p) => only.includes(p.path)) : list;
  })();
  return pagesPromise;
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Opens `entry.path` in `page`. Returns the response when the page should be tested; skips the
 * test (with its reason) when the portal does not serve the page yet (404 where 200 is
 * expected); fails when it answers anything else than what is expected.
 */
export async function open(t, page, entry) {
  let res;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await page.goto(url(entry.path), { waitUntil: 'load', timeout: 30_000 });
      break;
    } catch (e) {
      const why = e.message.split('\n')[0];
      // One retry on a dropped connection (the machine is shared with a compiler); logged, never silent.
      if (attempt === 1 && /net::ERR_(EMPTY_RESPONSE|CONNECTION_RESET|CONNECTION_CLOSED)/.test(why)) {
        console.log(`RETRY ${entry.path}: ${why}`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      throw new Failure(`${entry.path}: navigation failed: ${why}` +
        (/CONNECTION_REFUSED/.test(why) ? ' (is the portal still running? see its log)' : ''));
    }
  }
  const status = res ? res.status() : 0;
  if (status === entry.expect) return res;
  if (status === 404 && entry.expect === 200) {
    skip(t, `${entry.path} answers 404 (not served by the portal yet)`);
    return null;
  }
  throw new Failure(`${entry.path}: answers HTTP ${status}, expected ${entry.expect}`);
}

/** A short, stable CSS path for an element, for failure messages (run in the page). */
export const CSS_PATH_FN = `(el) => {
  const parts = [];
  for (let e = el; e && e.nodeType === 1 && parts.length < 5; e = e.parentElement) {
    let s = e.localName;
    if (e.id) { parts.unshift(s + '#' + e.id); break; }
    const cls = [...e.classList].slice(0, 2).map((c) => '.' + c).join('');
    s += cls;
    const sib = e.parentElement ? [...e.parentElement.children].filter((c) => c.localName === e.localName) : [];
    if (sib.length > 1) s += ':nth-of-type(' + (sib.indexOf(e) + 1) + ')';
    parts.unshift(s);
  }
  return parts.join(' > ');
}`;

/**
 * Run in the page with { width, cssPath: CSS_PATH_FN }: the document's scrollWidth and the outermost
 * elements that make the page wider than `width` (at most 5), for failure messages. An element
 * inside a scrolling container (a `.table-wrap`) does not count, unless it escapes it: an absolutely
 * positioned element whose containing block is outside the container is not clipped by it.
 */
export const OVERFLOW_FN = `({ width, cssPath }) => {
  const path = eval(cssPath);
  const root = document.documentElement;
  const out = (el) => { const r = el.getBoundingClientRect(); return r.right > width + 0.5 && r.width > 0; };
  const style = (el) => getComputedStyle(el);
  const containingBlock = (el) => {
    let p = el.parentElement;
    if (style(el).position === 'absolute') {
      while (p && p !== root && style(p).position === 'static' && style(p).transform === 'none') p = p.parentElement;
    }
    return p;
  };
  // Clipped by a scrolling container on its containing-block chain, or fixed (never scrolls the page).
  const clipped = (el) => {
    for (let cur = el; ; ) {
      if (style(cur).position === 'fixed') return true;
      const cb = containingBlock(cur);
      if (!cb || cb === document.body || cb === root) return false;
      if (style(cb).overflowX !== 'visible') return true;
      cur = cb;
    }
  };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!out(el) || clipped(el)) continue;
    let nested = false, scroller = null;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (!nested && out(p) && !clipped(p)) nested = true;
      if (!scroller && style(p).overflowX !== 'visible') scroller = p;
    }
    if (nested) continue;
    const r = el.getBoundingClientRect();
    wide.push(path(el) + ' (right edge ' + Math.round(r.right) + ' px' +
      (scroller ? ', position: ' + style(el).position + ', escapes the scrolling ' + path(scroller) +
        ' because its containing block is outside it' : '') + ')');
  }
  return { scrollWidth: root.scrollWidth, wide: wide.slice(0, 5) };
}`;

/** A test failure that prints as its message and the test file's line, without a long stack. */
export class Failure extends Error {
  constructor(message) {
    super(message);
    const frame = new Error().stack.split('\n').find((l) => l.includes('.test.mjs'));
    this.stack = `Failure: ${message}${frame ? '\n' + frame : ''}`;
  }
}
Failure.prototype.name = 'Failure';

/** Fails the test with `message` (a string, or a function building it) unless `ok`. */
export function check(ok, message) {
  if (!ok) throw new Failure(typeof message === 'function' ? message() : message);
}

/** The axe-core tags checked: WCAG 2.0, 2.1 and 2.2, levels A and AA. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/** axe violations as lines: rule id, impact, help, first 3 targets, axe's reason. */
export function describeViolations(path, mode, violations) {
  const lines = [`${path} (${mode}): ${violations.length} axe rule(s) violated`];
  for (const v of violations) {
    lines.push(`  - ${v.id} [${v.impact}] ${v.help} (${v.helpUrl})`);
    for (const n of v.nodes.slice(0, 3)) {
      const html = (n.html || '').replace(/\s+/g, ' ').slice(0, 100);
      lines.push(`      at ${n.target.join(' ')}${html ? `   ${html}` : ''}`);
    }
    if (v.nodes.length > 3) lines.push(`      … and ${v.nodes.length - 3} more`);
    const why = (v.nodes[0]?.failureSummary || '').split('\n').map((l) => l.trim()).filter(Boolean);
    if (why.length) lines.push(`      ${why[0]} ${why.slice(1, 4).join('; ')}`);
  }
  return lines.join('\n');
}

/**
 * Presses Tab from the top of the page until the focus comes back to the first element it reached
 * (or leaves the page), at most `max` times. Returns each element focused, in order, once (a date
 * field takes several Tabs for its parts): { path, tag, name, matches: { [selector]: bool }, onScreen,
 * indicator } where `indicator` says whether it shows a focus outline or shadow, `onScreen` whether
 * it is inside the viewport once focused, and `matches` which of `selectors` it matches.
 */
export async function tabWalk(page, selectors = [], max = 200) {
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(({ cssPath, selectors }) => {
      const path = eval(cssPath); // eslint-disable-line no-eval
      const el = document.activeElement;
      if (!el || el === document.body || el === document.documentElement) return null;
      const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
      return {
        path: path(el), tag: el.localName,
        name: (el.getAttribute('aria-label') || el.textContent || el.getAttribute('name') || '').replace(/\s+/g, ' ').trim().slice(0, 50),
        matches: Object.fromEntries(selectors.map((s) => [s, el.matches(s)])),
        onScreen: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth,
        indicator: outline || cs.boxShadow !== 'none',
        token: el.dataset.walk || (el.dataset.walk = String(Math.random())),
      };
    }, { cssPath: CSS_PATH_FN, selectors });
    if (!f) { if (seen.length) break; continue; }
    if (seen.length && f.token === seen[0].token) break;
    if (seen.length && f.token === seen[seen.length - 1].token) continue;
    seen.push(f);
  }
  await page.evaluate(() => document.querySelectorAll('[data-walk]').forEach((e) => delete e.dataset.walk));
  return seen;
}

// HTML_CodeSniffer rules that do not apply, each with its reason (`pa11y` and the `accounts` walk
// share it). Empty today: every rule holds. An entry is a code as pa11y prints it (e.g.
// 'WCAG2AA.Principle1.Guideline1_3.1_3_5.H98') and the sentence saying why it does not apply.
export const HTMLCS_NOT_APPLICABLE = new Map([]);

let htmlcsSource;
/**
 * HTML_CodeSniffer, the very build pa11y injects (`@pa11y/html_codesniffer`), run with the
 * WCAG2AA standard in a Playwright page as it is (signed in, after a POST): its errors, minus
 * HTMLCS_NOT_APPLICABLE, as { code, message, context }. Warnings and notices are « check by
 * hand » items, not failures. Evaluated through the DevTools protocol, so the portal's CSP does
 * not stop it, as it does not stop pa11y.
 */
export async function htmlcsErrors(page) {
  htmlcsSource ??= readFileSync(createRequire(import.meta.url).resolve('@pa11y/html_codesniffer/build/HTMLCS.js'), 'utf8');
  if (!(await page.evaluate('typeof window.HTMLCS !== "undefined"'))) await page.evaluate(htmlcsSource);
  const errors = await page.evaluate(() => new Promise((resolve, reject) => {
    window.HTMLCS.process('WCAG2AA', window.document, (error) => {
      if (error) { reject(error); return; }
      resolve(window.HTMLCS.getMessages().filter((m) => m.type === 1).map((m) => ({
        code: m.code,
        message: m.msg,
        context: (m.element && m.element.outerHTML ? m.element.outerHTML : '').slice(0, 160),
      })));
    });
  }));
  return errors.filter((e) => !HTMLCS_NOT_APPLICABLE.has(e.code));
}
