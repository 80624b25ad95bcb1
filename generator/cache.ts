// Cache entries that are checked before they are trusted. An entry is a set of artefacts (an object
// and its listing, a kernel's ELF, flat image and map, Bochs' boot sector) and a manifest written
// after them with the sha256 of each. A reused entry is read back and hashed: a file that is
// missing, truncated or changed since is said in one line and the entry is built again. Without a
// manifest (an entry never completed, or built before manifests existed) it is built again silently.
// Files are written through a temporary name and renamed, so a killed build leaves no half file.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, relative } from 'node:path';

export const MANIFEST_SCHEMA = 'svmconf-cache/1';

/** Where the cache says why it rebuilds (one line each); stderr unless a caller wants them. */
export type CacheNote = (line: string) => void;
const toStderr: CacheNote = (line) => process.stderr.write(`${line}\n`);

function shown(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : p;
}

export function fileHash(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A name unique to this process and call, next to `path` (same file system, so rename is atomic). */
let seq = 0;
export function tempPath(path: string): string {
  return `${path}.${process.pid}.${seq++}.tmp`;
}

/** Write via a temporary name and rename: readers see the old file or the whole new one. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

interface Manifest {
  schema: typeof MANIFEST_SCHEMA;
  /** File name (in the manifest's folder) → sha256 of its content. */
  files: Record<string, string>;
}

/** Record the hashes of `files` (all in the manifest's folder), once they are in place. */
export async function sealEntry(manifest: string, files: readonly string[]): Promise<void> {
  const m: Manifest = { schema: MANIFEST_SCHEMA, files: {} };
  for (const f of files) m.files[basename(f)] = fileHash(await readFile(f));
  await writeAtomic(manifest, `${JSON.stringify(m, null, 2)}\n`);
}

/**
 * True when every file of the entry is there with the hash its manifest records. A file that is
 * not is said (`note`) and false returned: the caller builds the entry again.
 */
export async function verifyEntry(manifest: string, files: readonly string[], note: CacheNote = toStderr): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(manifest, 'utf8');
  } catch {
    return false; // never completed: built again without a word
  }
  let m: Manifest | undefined;
  try {
    const v = JSON.parse(text) as Manifest;
    if (v?.schema === MANIFEST_SCHEMA && typeof v.files === 'object' && v.files !== null) m = v;
  } catch {
    // handled below
  }
  if (!m) {
    note(`cache: ${shown(manifest)} is damaged, rebuilding`);
    return false;
  }
  for (const f of files) {
    const want = m.files[basename(f)];
    if (typeof want !== 'string') {
      note(`cache: ${shown(f)} has no hash in ${shown(manifest)}, rebuilding`);
      return false;
    }
    let data: Uint8Array;
    try {
      data = await readFile(f);
    } catch {
      note(`cache: ${shown(f)} is missing, rebuilding`);
      return false;
    }
    if (fileHash(data) !== want) {
      note(`cache: ${shown(f)} does not match its hash, rebuilding`);
      return false;
    }
  }
  return true;
}
