// The e-mails the portal writes in development: `.eml` files under `<data dir>/mail/` (the outbox
// worker writes them within a couple of seconds). Used by accounts.test.mjs to follow activation,
// reset and invitation links the way a reader would.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Failure } from './support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where the portal writes its e-mails: NANOCLIP_MAIL_DIR, else `$NANOCLIP_DATA_DIR/mail`, else the
 * repository's `var/mail` (the data dir of a portal started by scripts/with-portal).
 */
export const MAIL_DIR = process.env.NANOCLIP_MAIL_DIR ||
  path.join(process.env.NANOCLIP_DATA_DIR || path.join(ROOT, 'var'), 'mail');

/** Headers (unfolded, names lower-cased) and body of a MIME entity given as a latin1 string. */
function splitEntity(raw) {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

/** Quoted-printable (soft line breaks `=\n`, `=3D`…) to bytes, given a latin1 string. */
function decodeQuotedPrintable(s) {
  const soft = s.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < soft.length; i++) {
    const hex = soft[i] === '=' ? soft.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) { bytes.push(parseInt(hex, 16)); i += 2; } else bytes.push(soft.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes);
}

/** The decoded text of every text/* leaf of a MIME entity, text/plain first. */
function texts(raw) {
  const { headers, body } = splitEntity(raw);
  const type = headers['content-type'] || 'text/plain';
  if (/^multipart\//i.test(type)) {
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (!boundary) return [];
    const parts = body.split(new RegExp(`\\r?\\n?--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`));
    const all = parts.slice(1).filter((p) => p.trim()).flatMap(texts);
    return [...all.filter((t) => t.type === 'text/plain'), ...all.filter((t) => t.type !== 'text/plain')];
  }
  if (!/^text\//i.test(type)) return [];
  const cte = (headers['content-transfer-encoding'] || '').toLowerCase();
  const bytes = cte === 'quoted-printable' ? decodeQuotedPrintable(body)
    : cte === 'base64' ? Buffer.from(body.replace(/\s+/g, ''), 'base64')
    : Buffer.from(body, 'latin1');
  return [{ type: type.split(';')[0].trim().toLowerCase(), text: bytes.toString('utf8') }];
}

/** Reads one .eml file: { to, subject, text } (text: every text part decoded, text/plain first). */
export async function readMail(file) {
  const raw = (await fs.readFile(file)).toString('latin1');
  const { headers } = splitEntity(raw);
  return {
    to: headers.to || '',
    subject: headers.subject || '',
    text: texts(raw).map((t) => t.text).join('\n'),
  };
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Waits for the newest e-mail to `address` written since `since` (ms) that holds a link to
 * `linkPath` (e.g. `/compte/activation`), and returns { link, file, subject }. Fails after
 * `timeout` ms with what the mail directory holds.
 */
export async function waitForLink(address, linkPath, { since, timeout = 15_000 } = {}) {
  const deadline = Date.now() + timeout;
  const linkRe = new RegExp(`https?://[^\\s"'<>]+${escape(linkPath)}\\?jeton=[A-Za-z0-9_-]+`);
  const toRe = new RegExp(`(^|[<\\s,"])${escape(address)}($|[>\\s,"])`, 'i');
  const notBefore = (since ?? 0) - 2_000; // file times have a coarser resolution than Date.now()
  let seen = { files: 0, toAddress: 0, dirError: null };
  for (;;) {
    seen = { files: 0, toAddress: 0, dirError: null };
    let best = null;
    let names = [];
    try {
      names = (await fs.readdir(MAIL_DIR)).filter((n) => n.endsWith('.eml'));
    } catch (e) {
      seen.dirError = e.code || e.message;
    }
    for (const name of names) {
      const file = path.join(MAIL_DIR, name);
      let stat;
      try { stat = await fs.stat(file); } catch { continue; }
      if (stat.mtimeMs < notBefore) continue;
      seen.files++;
      let mail;
      try { mail = await readMail(file); } catch { continue; }
      if (!toRe.test(mail.to)) continue;
      seen.toAddress++;
      const link = linkRe.exec(mail.text)?.[0];
      if (link && (!best || stat.mtimeMs > best.mtime)) best = { link, file, subject: mail.subject, mtime: stat.mtimeMs };
    }
    if (best) return best;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Failure(`no e-mail to ${address} with a ${linkPath}?jeton=… link in ${MAIL_DIR} after ${timeout / 1000} s (` +
    (seen.dirError ? `the directory cannot be read: ${seen.dirError}; ` : '') +
    `${seen.files} .eml file(s) written since the step began, ${seen.toAddress} to that address). ` +
    'Is the portal sending through SMTP, or writing to another data dir? NANOCLIP_MAIL_DIR sets where to look.');
}
