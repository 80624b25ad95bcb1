// The suite image against the -kernel runs, case by case: builds every kernel and the image, runs
// the kernels on qemu-tcg with -kernel, then boots the image once per machine behind the console
// backend (QEMU with SeaBIOS, QEMU with OVMF, Bochs) and prints, per machine, the boot time and how
// many records equal the -kernel ones, listing every case that does not.
//   usage: node --import tsx scripts/iso-compare.ts [--filter <glob>]... [--skip-bochs] [--grub-reference]
// The test suite (test/console-e2e.spec.ts) asserts the QEMU half; this script adds Bochs and the
// figures for docs/runs.md.

import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernels, expandAll, filterCases, loadTemplates, makeRenderer, ROOT } from '../generator/index.ts';
import { buildIso } from '../generator/iso.ts';
import { defaultCacheDir } from '../generator/kernel.ts';
import { consoleBackend } from '../runner/backends/console.ts';
import type { CaseResult, Kernel } from '../core/types.ts';
import { qemuTcgBackend } from '../runner/backends/qemu.ts';
import { bochsBackend } from '../runner/backends/bochs.ts';
import { runKernels } from '../runner/schedule.ts';
import { qemuBiosCmd, qemuUefiCmd, sh } from '../test/support/iso-machines.ts';

const args = process.argv.slice(2);
const filters = args.flatMap((a, i) => (args[i - 1] === '--filter' ? [a] : []));
const dir = await mkdtemp(join(tmpdir(), 'svmconf-iso-compare-'));
try {
  const cases = filterCases(expandAll(await loadTemplates()), filters);
  const kernels = await buildKernels(cases);
  const iso = await buildIso(kernels, { renderer: await makeRenderer(), cacheDir: defaultCacheDir(ROOT), out: join(dir, 'suite.iso'), timeout: 0 });
  const tcg = qemuTcgBackend();
  const info = await tcg.probe();
  const t0 = performance.now();
  const ref = await runKernels(kernels, [{ backend: tcg, info }], { jobs: 2, idleTimeoutMs: 10_000 });
  console.log(`-kernel on qemu-tcg: ${kernels.length} kernels, ${cases.length} cases, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const machines: Array<[string, string]> = [
    ['QEMU BIOS (SeaBIOS)', qemuBiosCmd(iso)],
    ['QEMU UEFI (OVMF)', await qemuUefiCmd(iso, dir)],
  ];
  if (!args.includes('--skip-bochs')) machines.push(['Bochs 2.7 (phenom, BIOS)', `bash ${sh(join(ROOT, 'scripts', 'bochs-console.sh'))} ${sh(iso)}`]);
  const bochs = (image: string) => `bash ${sh(join(ROOT, 'scripts', 'bochs-console.sh'))} ${sh(image)}`;
  // Bochs has no -kernel: its reference is the bochs-phenom backend, which boots each batch kernel
  // on its own (its boot sector loads the flat image from the floppy; no GRUB, no suite loader), the same CPU model as
  // bochs-console.sh; --grub-reference boots each kernel alone by GRUB's multiboot loader instead.
  let bochsRef = new Map<string, Record<string, CaseResult>>();
  if (!args.includes('--skip-bochs')) {
    const t1 = performance.now();
    if (args.includes('--grub-reference')) {
      for (const [i, k] of kernels.entries()) {
        const one = await singleKernelIso(k, join(dir, `single${i}`));
        const run = await consoleBackend({ consoleCmd: bochs(one) }).runSuite([k], { idleTimeoutMs: 60_000 });
        for (const [id, r] of run.results) bochsRef.set(id, { bochs: r });
      }
      console.log(`Bochs, each kernel booted alone by GRUB multiboot: ${((performance.now() - t1) / 1000).toFixed(1)} s for ${kernels.length} boots`);
    } else {
      const phenom = bochsBackend({ flavour: 'phenom' });
      const got = await runKernels(kernels, [{ backend: phenom, info: await phenom.probe() }], { jobs: 2, idleTimeoutMs: 30_000 });
      bochsRef = new Map([...got].map(([id, r]) => [id, { bochs: r[phenom.name]! }]));
      console.log(`Bochs, each kernel booted alone by the bochs-phenom backend: ${((performance.now() - t1) / 1000).toFixed(1)} s for ${kernels.length} boots`);
    }
  }
  for (const [name, cmd] of machines) {
    const isBochs = name.startsWith('Bochs');
    const reference = isBochs ? bochsRef : ref;
    const refName = isBochs ? 'bochs' : 'qemu-tcg';
    const run = await consoleBackend({ consoleCmd: cmd }).runSuite(kernels, { idleTimeoutMs: 60_000 });
    let equal = 0;
    let skipForUnsupported = 0;
    const diffs: string[] = [];
    for (const c of cases) {
      const a = reference.get(c.id)?.[refName];
      const b = run.results.get(c.id);
      if (a?.status === 'UNSUPPORTED' && b?.status === 'SKIP') skipForUnsupported++;
      else if (a && b && a.status === b.status && a.record === b.record) equal++;
      else diffs.push(`  ${c.id}: -kernel ${a?.status} ${a?.record ?? a?.reason ?? ''} | image ${b?.status} ${b?.record ?? b?.reason ?? ''}`);
    }
    console.log(`${name} vs ${isBochs ? 'Bochs booting each kernel alone' : '-kernel on qemu-tcg'}: ${run.end} in ${run.seconds.toFixed(1)} s; ${equal} records equal, ${skipForUnsupported} SKIP where -kernel was UNSUPPORTED (NRIPS), ${diffs.length} different`);
    for (const d of diffs) console.log(d);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** An image whose GRUB boots one batch kernel directly (`multiboot kernel start=0`). */
async function singleKernelIso(k: Kernel, at: string): Promise<string> {
  await mkdir(join(at, 'root', 'boot', 'grub'), { recursive: true });
  await copyFile(k.elf, join(at, 'root', 'kernel.elf'));
  await writeFile(join(at, 'root', 'boot', 'grub', 'grub.cfg'), 'serial --unit=0 --speed=115200\nterminal_output serial\nset timeout=0\nmenuentry k {\n  multiboot /kernel.elf start=0\n  boot\n}\n');
  await execa('grub-mkrescue', ['-o', join(at, 'k.iso'), join(at, 'root')]);
  return join(at, 'k.iso');
}
