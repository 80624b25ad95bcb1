// GNU as / ld / objcopy through execa, with results cached by content hash.
//
// The cache key of an object is the hash of its source and of the tool's version line, so a
// changed template, partial, constant or binutils rebuilds exactly what it affects. Every entry
// has a manifest of its files' hashes (generator/cache.ts): a cached file that was truncated or
// changed is found on reuse and built again, with a line saying so.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { BuildError, TemplateError, ToolMissingError } from './errors.ts';
import { stripMarkers, type Renderer } from './render.ts';
import { sealEntry, tempPath, verifyEntry, writeAtomic } from './cache.ts';

const INSTALL_BINUTILS = 'apt-get install binutils (or run make setup)';

export function sha256(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}


let versionLine: Promise<string> | undefined;

/** `as --version`'s first line; part of every cache key. Throws ToolMissingError without binutils. */
export function toolVersion(): Promise<string> {
  versionLine ??= (async () => {
    for (const tool of ['as', 'ld', 'objcopy']) {
      try {
        await execa(tool, ['--version']);
      } catch {
        throw new ToolMissingError(tool, INSTALL_BINUTILS);
      }
    }
    return (await execa('as', ['--version'])).stdout.split('\n')[0] ?? '';
  })();
  return versionLine;
}

export interface AssembleInput {
  /** Rendered assembly with source markers. */
  source: string;
  /** Shown in errors (a case id, "runtime", "case table of <kernel>"). */
  what: string;
  renderer: Renderer;
}

export interface Assembled {
  object: string;
  /** GNU as listing (`-al`): source line, offset and bytes of everything emitted. */
  listing: string;
}

/** Assemble to an object in the cache. Errors point at template file and line. */
export async function assemble(cacheDir: string, input: AssembleInput): Promise<Assembled> {
  const key = sha256('as', await toolVersion(), input.source);
  const obj = join(cacheDir, 'obj', `${key}.o`);
  const lst = join(cacheDir, 'obj', `${key}.lst`);
  const manifest = join(cacheDir, 'obj', `${key}.sha256.json`);
  if (await verifyEntry(manifest, [obj, lst])) return { object: obj, listing: await readFile(lst, 'utf8') };
  const src = join(cacheDir, 'src', `${key}.s`);
  await writeAtomic(src, input.source);
  const tmpObj = tempPath(obj);
  const tmpLst = tempPath(lst);
  await mkdir(dirname(obj), { recursive: true });
  const r = await execa('as', ['--64', '--fatal-warnings', `-aln=${tmpLst}`, '--listing-cont-lines=10000', '-o', tmpObj, src], { reject: false });
  if (r.exitCode !== 0) {
    await Promise.all([tmpObj, tmpLst].map((f) => unlink(f).catch(() => undefined)));
    throw assemblerError(input, src, r.stderr);
  }
  await rename(tmpLst, lst);
  await rename(tmpObj, obj);
  await sealEntry(manifest, [obj, lst]); // last: it marks a complete entry
  return { object: obj, listing: await readFile(lst, 'utf8') };
}

/** Turn `file.s:LINE: Error: …` into an error naming the template line and showing the rendered line. */
function assemblerError(input: AssembleInput, srcPath: string, stderr: string): Error {
  const lines = input.source.split('\n');
  const re = /^[^:]+:(\d+): (Error|Warning): (.*)$/;
  const first = stderr.split('\n').map((l) => re.exec(l)).find((m) => m !== null);
  if (!first) return new Error(`as failed on ${input.what} (${srcPath}):\n${stderr}`);
  const renderedLineNo = Number(first[1]);
  const rendered = lines[renderedLineNo - 1] ?? '';
  const ref = input.renderer.sourceOf(rendered);
  const context = `  rendered for ${input.what}, line ${renderedLineNo} of ${srcPath}:\n    ${stripMarkers(rendered).trim()}`;
  const more = stderr.split('\n').filter((l) => re.test(l)).length - 1;
  const detail = `as: ${first[2]}: ${first[3]}${more > 0 ? ` (and ${more} more)` : ''}`;
  if (!ref) return new TemplateError(srcPath, renderedLineNo, detail, context);
  return new TemplateError(ref.file, ref.line, detail, context);
}

/** An object to link, with the source it was assembled from when a link error should point into it. */
export interface LinkObject {
  path: string;
  /** Shown in errors (a case id). */
  what?: string;
  /** The rendered assembly with source markers (render.ts). */
  source?: string;
}

/**
 * ld's "undefined reference to `sym'" as the template line that uses `sym`: the object ld names is
 * one of ours, its source has the markers, and the first line that names the symbol (and does not
 * define it) is the use. Other ld errors are a BuildError with ld's words.
 */
export function linkError(stderr: string, objects: readonly LinkObject[], renderer: Renderer | undefined, what: string): Error {
  const undef = /^ld: (.+?): in function `[^']*':\n[^\n]*undefined reference to `([^']+)'/m.exec(stderr)
    ?? /^ld: (.+?):[^\n]*undefined reference to `([^']+)'/m.exec(stderr);
  const count = (stderr.match(/undefined reference to/g) ?? []).length;
  if (undef && renderer) {
    const [, objPath, symbol] = undef as unknown as [string, string, string];
    const obj = objects.find((o) => o.path === objPath);
    if (obj?.source) {
      const word = new RegExp(`(^|[^\\w.$])${symbol.replace(/[.$]/g, '\\$&')}(?![\\w.$])`);
      const lines = obj.source.split('\n');
      const at = lines.findIndex((l) => word.test(stripMarkers(l).replace(/#.*$/, '')) && !new RegExp(`^\\s*${symbol.replace(/[.$]/g, '\\$&')}\\s*:`).test(l));
      const ref = at >= 0 ? renderer.sourceOf(lines[at]!) : undefined;
      const more = count > 1 ? ` (and ${count - 1} more undefined reference(s))` : '';
      const detail = `ld: undefined reference to \`${symbol}\` (no label or symbol of that name in the case, the runtime or the partials)${more}`;
      const context = `  in ${obj.what ?? objPath}, linking ${what}${at >= 0 ? `:\n    ${stripMarkers(lines[at]!).trim()}` : ''}`;
      if (ref) return new TemplateError(ref.file, ref.line, detail, context);
    }
  }
  return new BuildError(`ld failed for ${what}:\n${stderr.trim()}`);
}

export interface LinkOutput {
  elf: string;
  bin: string;
  map: string;
}

/**
 * Link objects at KERNEL_LOAD_ADDR with our linker script, then derive the multiboot ELF32 (QEMU's
 * -kernel takes multiboot only as ELF32: docs/tools.md "QEMU") and a flat image (the Bochs backend's floppy, runner/bochs/boot.S).
 */
export async function link(cacheDir: string, inputs: ReadonlyArray<string | LinkObject>, linkerScript: string, what: string, renderer?: Renderer): Promise<LinkOutput> {
  const linked = inputs.map((o) => (typeof o === 'string' ? { path: o } : o));
  const objects = linked.map((o) => o.path);
  const key = sha256('ld', await toolVersion(), linkerScript, ...objects);
  const dir = join(cacheDir, 'kernel', key);
  const out = { elf: join(dir, 'kernel.elf'), bin: join(dir, 'kernel.bin'), map: join(dir, 'kernel.map') };
  const files = [out.elf, out.bin, out.map];
  const manifest = join(dir, 'manifest.sha256.json');
  if (await verifyEntry(manifest, files)) return out;
  await mkdir(dir, { recursive: true });
  const script = join(dir, 'kernel.ld');
  await writeAtomic(script, linkerScript);
  const elf64 = join(dir, 'kernel64.elf');
  const tmp = { elf64: tempPath(elf64), map: tempPath(out.map), elf: tempPath(out.elf), bin: tempPath(out.bin) };
  try {
    const ld = await execa('ld', ['-m', 'elf_x86_64', '-nostdlib', '--no-warn-rwx-segments', '-T', script, '-Map', tmp.map, '-o', tmp.elf64, ...objects], { reject: false });
    if (ld.exitCode !== 0) throw linkError(ld.stderr, linked, renderer, what);
    for (const args of [['-O', 'elf32-i386', tmp.elf64, tmp.elf], ['-O', 'binary', '--set-section-flags', '.bss=alloc,load,contents', tmp.elf64, tmp.bin]]) {
      const r = await execa('objcopy', args, { reject: false });
      if (r.exitCode !== 0) throw new BuildError(`objcopy failed for ${what}:\n${r.stderr.trim()}`);
    }
    await rename(tmp.elf64, elf64);
    await rename(tmp.map, out.map);
    await rename(tmp.elf, out.elf);
    await rename(tmp.bin, out.bin);
  } finally {
    await Promise.all(Object.values(tmp).map((f) => unlink(f).catch(() => undefined)));
  }
  await sealEntry(manifest, files); // last: it marks a complete entry
  return out;
}
