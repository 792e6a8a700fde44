// The W3C Nu HTML checker (npm `vnu-jar`), run with the installed Java on a batch of files.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const VNU_JAR = path.join(path.dirname(require.resolve('vnu-jar/package.json')), 'build/dist/vnu.jar');
const JAVA = process.env.JAVA || 'java';

/** A page with errors (a <div> inside a <p>, no <title>): a checker that finds nothing in it is broken. */
export const CONTROL_PAGE = '<!DOCTYPE html><html lang="fr"><head></head><body><p>a<div>b</div></p></body></html>';

/** vnu's messages (JSON format) for `files`, in one Java start. */
export function runVnu(files) {
  return new Promise((resolve, reject) => {
    execFile(JAVA, ['-jar', VNU_JAR, '--format', 'json', '--exit-zero-always', ...files],
      { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) return reject(new Error(`vnu could not run (${JAVA} -jar ${VNU_JAR}): ${error.message}`));
        try {
          resolve(JSON.parse(stderr || stdout).messages);
        } catch (e) {
          reject(new Error(`vnu output unreadable: ${e.message}\n${(stderr || stdout).slice(0, 500)}`));
        }
      });
  });
}

/** The errors vnu reported for `file`, with `describe`: up to 10 of them as lines. */
export function htmlErrors(messages, file) {
  const errors = (messages || []).filter((m) => (m.type === 'error' || m.type === 'non-document-error')
    && m.url && m.url.endsWith(`/${path.basename(file)}`));
  errors.describe = errors.slice(0, 10).map((m) =>
    `  line ${m.lastLine}:${m.firstColumn ?? ''} ${m.message}` +
    (m.extract ? `\n      ${m.extract.replace(/\s+/g, ' ').slice(0, 120)}` : '')).join('\n');
  return errors;
}

/**
 * Checks each HTML text, together with the broken control page, in one Java start. Returns
 * `controlErrors` (must be more than 0, or the checker's silence means nothing) and `errors`,
 * the errors of each text in order (see `htmlErrors`).
 */
export async function checkHtml(texts) {
  const dir = await mkdtemp(path.join(tmpdir(), 'nanoclip-vnu-'));
  try {
    const control = path.join(dir, 'control.html');
    await writeFile(control, CONTROL_PAGE);
    const files = [];
    for (const [i, text] of texts.entries()) {
      const file = path.join(dir, `page-${i + 1}.html`);
      await writeFile(file, text);
      files.push(file);
    }
    const messages = await runVnu([control, ...files]);
    return {
      controlErrors: htmlErrors(messages, control).length,
      errors: files.map((file) => htmlErrors(messages, file)),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
