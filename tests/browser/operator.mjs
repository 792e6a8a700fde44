// The operator's command line, used by accounts.test.mjs to give the walk's organisation a credit
// history the way staff would: `nanoclip credits adjust`, which writes the ledger through the
// portal's own services (the browser tests never write ledger rows themselves).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Failure } from './support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The binary: NANOCLIP_BIN, else the debug build that scripts/with-portal serves. It runs from the
 * repository's root with this environment, so it finds the portal's database the way the portal
 * did (DATABASE_URL, or the private cluster under var/postgres).
 */
export const NANOCLIP_BIN = process.env.NANOCLIP_BIN || path.join(ROOT, 'target', 'debug', 'nanoclip');

/** Runs `nanoclip ARGS…`; resolves with its standard output, fails with what it said. */
export function nanoclip(args) {
  return new Promise((resolve, reject) => {
    execFile(NANOCLIP_BIN, args, { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout.trim());
      const said = `${stderr}${stdout}`.trim() || error.message;
      reject(new Failure(`${path.relative(ROOT, NANOCLIP_BIN)} ${args.join(' ')} failed (${error.code ?? error.signal}): ${said}` +
        (/Aucune organisation/.test(said)
          ? '\n(the command reached another database than the portal: run the portal with scripts/with-portal, or set NANOCLIP_BIN and DATABASE_URL to the portal\'s)'
          : '')));
    });
  });
}

/** `nanoclip credits adjust`: one line, « … solde disponible N crédits. »; resolves with N. */
export async function adjust(owner, credits, reason, expires) {
  const args = ['credits', 'adjust', '--organisation', owner, `--credits=${credits}`, '--reason', reason];
  if (expires) args.push('--expires', expires);
  const line = await nanoclip(args);
  const m = /solde disponible (\d+) crédits?/.exec(line);
  if (!m) throw new Failure(`nanoclip ${args.join(' ')} printed « ${line} », expected « … solde disponible N crédits. »`);
  return Number(m[1]);
}

/** The Europe/Paris day `days` after today, as YYYY-MM-DD (the portal's days are Paris days). */
export function parisDay(days = 0) {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris' }).format(new Date());
  const [y, m, d] = today.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/**
 * `nanoclip run-job NAME`: one run of a background job, now, against the portal's database (the
 * portal runs its jobs too, but its first run of each waits 10 to 40 s after it starts). Resolves
 * with the rows it handled (« test-engine: 1 rows »), or 0 when another instance was running it.
 */
export async function runJob(name) {
  const line = await nanoclip(['run-job', name]);
  const m = /: (\d+) rows?$/.exec(line);
  if (m) return Number(m[1]);
  if (/skipped/.test(line)) return 0;
  throw new Failure(`nanoclip run-job ${name} printed « ${line} », expected « ${name}: N rows »`);
}
