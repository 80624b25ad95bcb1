// The bootable suite image: the suite loader (templates/partials/suite_loader.S.hbs), every batch
// kernel as a multiboot module, a grub.cfg with a menu, and grub-mkrescue for a hybrid BIOS+UEFI
// ISO. One boot runs every batch in suite order and prints the protocol on COM1 (docs/backends/console.md
// "The image").

import { execa } from 'execa';
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Kernel } from '../core/types.ts';
import { asmConstants } from '../arch/asm.ts';
import { asmPaging } from '../arch/paging.ts';
import { asmLayout, SUITE_LOADER_ADDR, SUITE_RETURN_ADDR } from './layout.ts';
import { assemble, link } from './toolchain.ts';
import type { Renderer } from './render.ts';
import { ToolMissingError } from './errors.ts';

/** Debian packages grub-mkrescue needs for a hybrid image (scripts/setup.sh installs them). */
export const ISO_PACKAGES = 'grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools';

/** Where the image keeps its files. */
const ISO_DIR = 'svmconf';

export function loaderLinkerScript(): string {
  return `OUTPUT_FORMAT(elf64-x86-64)
ENTRY(_start)
SECTIONS
{
  . = 0x${SUITE_LOADER_ADDR.toString(16)};
  .text : { *(.multiboot) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.*) }
  .data : { *(.data .data.*) }
  .bss : { __bss_start = .; *(.bss .bss.* COMMON) . = ALIGN(8); __bss_end = .; }
  __loader_end = .;
  /DISCARD/ : { *(.note.*) *(.comment) *(.eh_frame) }
}
ASSERT(suite_return_entry == 0x${SUITE_RETURN_ADDR.toString(16)}, "suite_return_entry must sit at SUITE_RETURN_ADDR (generator/layout.ts)")
`;
}

export function loaderSource(renderer: Renderer): string {
  return `${asmConstants()}${asmPaging()}${asmLayout()}${renderer.renderPartial('suite_loader', { returnAddr: String(SUITE_RETURN_ADDR) })}\n`;
}

/** Build the suite loader (multiboot ELF32 at SUITE_LOADER_ADDR); cached like the kernels. */
export async function buildLoader(renderer: Renderer, cacheDir: string): Promise<string> {
  const a = await assemble(cacheDir, { source: loaderSource(renderer), what: 'the suite loader', renderer });
  return (await link(cacheDir, [a.object], loaderLinkerScript(), 'the suite loader')).elf;
}

/** File name of the i-th batch kernel inside the image. */
export function moduleName(i: number): string {
  return `k${String(i).padStart(3, '0')}.elf`;
}

export interface GrubConfigOptions {
  /** Seconds the menu waits before booting the full suite. */
  timeout: number;
}

/**
 * grub.cfg: serial and screen terminals, the full suite first (the default), then one entry per
 * template. Each module line carries the batch's command line (`start=0`, add `end=N` to cut a
 * range: GRUB's `e` edits it before booting).
 */
export function grubConfig(kernels: readonly Kernel[], opts: GrubConfigOptions): string {
  const entry = (title: string, list: Array<[Kernel, number]>): string[] => [
    `menuentry '${title}' {`,
    `  echo 'svmconf: loading ${list.length} batch kernel(s)'`,
    `  multiboot /${ISO_DIR}/loader.elf`,
    ...list.flatMap(([k, i]) => [`  # ${k.id}: ${k.cases.length} case(s)`, `  module /${ISO_DIR}/${moduleName(i)} ${moduleName(i)} start=0`]),
    '  boot',
    '}',
  ];
  const indexed = kernels.map((k, i) => [k, i] as [Kernel, number]);
  const templates = new Map<string, Array<[Kernel, number]>>();
  for (const [k, i] of indexed) {
    const t = k.cases[0]?.template.id ?? k.id;
    templates.set(t, [...(templates.get(t) ?? []), [k, i]]);
  }
  const ncases = kernels.reduce((n, k) => n + k.cases.length, 0);
  return [
    '# svmconf bootable suite (generator/iso.ts). COM1 115200 8N1 and the screen.',
    'serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1',
    'terminal_input serial console',
    'terminal_output serial console',
    `set timeout=${opts.timeout}`,
    'set default=0',
    '',
    ...entry(`svmconf: full suite (${kernels.length} kernels, ${ncases} cases)`, indexed),
    ...[...templates].flatMap(([t, list]) => ['', ...entry(`svmconf: ${t} only`, list)]),
    '',
  ].join('\n');
}

/** The image's manifest: which kernel is which module (the console backend maps by kernel id). */
export function isoManifest(kernels: readonly Kernel[]): object {
  return {
    format: 'svmconf-iso/1',
    kernels: kernels.map((k, i) => ({ module: moduleName(i), id: k.id, cpu: k.cpu, cases: k.cases.map((c) => c.id) })),
  };
}

export interface IsoOptions {
  renderer: Renderer;
  cacheDir: string;
  out: string;
  timeout?: number;
}

/** Build the ISO at `out` (atomically); returns the path. */
export async function buildIso(kernels: readonly Kernel[], opts: IsoOptions): Promise<string> {
  const loader = await buildLoader(opts.renderer, opts.cacheDir);
  const stage = await mkdtemp(join(tmpdir(), 'svmconf-iso-'));
  try {
    const dir = join(stage, 'root');
    await mkdir(join(dir, 'boot', 'grub'), { recursive: true });
    await mkdir(join(dir, ISO_DIR), { recursive: true });
    await cp(loader, join(dir, ISO_DIR, 'loader.elf'));
    for (const [i, k] of kernels.entries()) await cp(k.elf, join(dir, ISO_DIR, moduleName(i)));
    await writeFile(join(dir, 'boot', 'grub', 'grub.cfg'), grubConfig(kernels, { timeout: opts.timeout ?? 3 }));
    await writeFile(join(dir, ISO_DIR, 'manifest.json'), `${JSON.stringify(isoManifest(kernels), null, 2)}\n`);
    await mkdir(dirname(opts.out), { recursive: true });
    const tmp = `${opts.out}.${process.pid}.tmp`;
    const r = await execa('grub-mkrescue', ['-o', tmp, dir], { reject: false, all: true });
    if (r.exitCode !== 0) {
      await rm(tmp, { force: true });
      const text = String(r.all ?? r.stderr ?? '');
      if ((r as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String(r.message))) {
        throw new ToolMissingError('grub-mkrescue', `apt-get install ${ISO_PACKAGES} (or run make setup)`);
      }
      throw new Error(`grub-mkrescue failed (apt-get install ${ISO_PACKAGES} if a platform is missing):\n${text}`);
    }
    await rename(tmp, opts.out);
    return opts.out;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
