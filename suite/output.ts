// Where a command writes its files (--out): checked before any work, so a run is never lost to a
// folder it cannot write at the end; and the file-system errors of the final writes said in one
// line with the path, never as a stack trace.

import { randomBytes } from 'node:crypto';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.ts';

/** What an errno means for a path someone wants to write. */
const REASONS: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file, not a folder',
  ENOENT: 'a folder on the way cannot be created',
  EISDIR: 'a folder, not a file',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
};

/** A file-system error's reason, "read-only file system (EROFS)", or undefined for other errors. */
export function fsReason(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && code in REASONS ? `${REASONS[code]} (${code})` : undefined;
}

/** A file-system error as "<path>: <reason>" (its own path unless one is given), or undefined. */
export function fsErrorText(e: unknown, path?: string): string | undefined {
  const why = fsReason(e);
  return why && `${path ?? (e as NodeJS.ErrnoException).path ?? '(unknown path)'}: ${why}`;
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir spins for ever on a path under /proc
 * (ENOENT from a parent that exists), so each missing level is created by itself and the first
 * refusal is the answer.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    const s = await stat(d).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    if (s) {
      if (!s.isDirectory()) throw Object.assign(new Error(`${d} is not a folder`), { code: d === dir ? 'EEXIST' : 'ENOTDIR', path: d });
      break;
    }
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) await mkdir(d).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
}

/**
 * The folder `dir` exists (created if need be) and takes a file: a probe is written, synced and
 * removed. Any refusal is a UsageError naming the option and the path, before anything runs.
 */
export async function checkOutDir(dir: string, option = '--out'): Promise<void> {
  const abs = resolve(dir);
  const probe = join(abs, `.svmconf-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await makeDirs(abs);
    const fh = await open(probe, 'wx');
    try {
      await fh.writeFile('svmconf: can this folder be written?\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    const why = fsReason(e);
    const at = (e as NodeJS.ErrnoException).path;
    if (why) throw new UsageError(`${option} ${dir}: cannot write there: ${why}${at && at !== abs && at !== probe ? ` at ${at}` : ''}`);
    throw e;
  } finally {
    await unlink(probe).catch(() => undefined);
  }
}

/**
 * Write the files of a command's output in order; the first that fails is said in one line with
 * its path and why, and `rescue` (when given) may keep what matters elsewhere. Returns the failure
 * text, or undefined when every file was written.
 */
export async function writeOutputs(
  files: ReadonlyArray<{ path: string; write: () => Promise<void>; rescue?: () => Promise<string> }>,
): Promise<string | undefined> {
  for (const f of files) {
    try {
      await f.write();
    } catch (e) {
      const why = fsReason(e);
      if (!why) throw e;
      const kept = f.rescue ? await f.rescue().catch(() => undefined) : undefined;
      return `cannot write ${f.path}: ${why}; ${kept ?? 'nothing more was written'}`;
    }
  }
  return undefined;
}

/** A copy of `text` in the temporary folder (for output that could not go where it was asked). */
export async function saveInTemp(name: string, text: string): Promise<string> {
  const path = join(tmpdir(), `svmconf-${process.pid}-${randomBytes(3).toString('hex')}-${name}`);
  const fh = await open(path, 'wx', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(path).catch(() => undefined);
    throw e;
  }
  await fh.close();
  return path;
}
