// EXPERIMENTAL, not a backend: the "kvm-bochs" host of issue 16 item 4 (docs/backends/kvm-bochs.md).
// The pinned Linux 7.3 with kvm_amd nested=1 booted by GRUB in Bochs 3.1 `cpu: model=ryzen`,
// whose SVM has NRIPS (docs/backends/bochs.md), so that KVM's nested code paths with NRIPS run,
// which the TCG host (QEMU TCG, no NRIPS: docs/backends/kvm-tcg.md) never reaches. One boot runs
// the native helper once per suite kernel given, and prints everything on COM1.
//
//   node --import tsx runner/kvmbochs/run.ts [--filter GLOB]... [--host-bochs] [--kernel linux@7.3]
//                                            [--ips N] [--megs N] [--limit-min N] [--no-build]
//
// Status (docs/backends/kvm-bochs.md): Bochs 3.1 does not get Linux past early boot; with
// --host-bochs (Bochs 2.7) kvm_amd loads with nested=1 and nrips=1, and the first suite kernel
// triple-faults in KVM's guest (the helper's 16-bit TR). No case has run here yet.
//
// Bochs has no direct Linux boot and no virtio: the image is a GRUB rescue ISO (grub-mkrescue, as
// generator/iso.ts builds `make iso`) on ata0-master as a CD-ROM, with vmlinuz and an initramfs:
// busybox-static (build/tcghost/debs, `make tcghost`), the pinned kernel's mods/ and mods/order
// (runner/peers/kernels.ts), the helper linked statically, the kernels and runner/kvmbochs/init.sh.
// Bochs runs from the sid root as the bochs@3.1 columns run it (runner/backends/bochs.ts,
// runner/peers/launch.ts): loader + bochs-bin -q, the root's environment, `unshare -rn`, an rfb
// display that waits for no client. COM1 is a file, read every 200 ms; each new line is written to
// the console log with the wall-clock seconds since Bochs started.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { ROOT } from '../../generator/index.ts';
import { GUEST_RAM_MIB } from '../../generator/layout.ts';
import { writeCHeader } from '../../arch/c-header.ts';
import { cpioNewc, type CpioEntry } from '../tcghost/cpio.ts';
import { TCGHOST_DIR } from '../tcghost/image.ts';
import { pinnedKernel, pinnedLaunch, type PeerLaunch } from '../peers/launch.ts';
import { withParentDeath } from '../pdeath.ts';
import { BOCHS_BINARY, BOCHS_BIOS, BOCHS_IPS, BOCHS_VGABIOS, bochsrc, DEBUGGER_SCRIPT } from '../backends/bochs.ts';

const OUT_DIR = join(ROOT, 'build', 'kvmbochs');
const INIT = join(ROOT, 'runner', 'kvmbochs', 'init.sh');
const NATIVE_DIR = join(ROOT, 'native', 'kvm');
/** The kernel peer whose KVM is tested (runner/peers/pins.yaml); --kernel names another. */
let KERNEL_PEER = 'linux@7.3';
const BOCHS_PEER = 'bochs@3.1';
/** The modules of mods/order the host needs: KVM and what it depends on (the 9p ones are the TCG host's share). */
const SKIP_MODULES = /^(9p|9pnet|9pnet_virtio|netfs)\.ko$/;
/** Linux's command line: COM1 as console; no KASLR and no mitigations, which only cost emulated instructions here. */
// clearcpuid=mwaitx: Linux's udelay on AMD waits in MWAITX with its timer (arch/x86/lib/delay.c), a wait Bochs 2.7
// never ends (docs/backends/kvm-bochs.md); without the feature it counts TSC cycles instead
const LINUX_CMDLINE = 'console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 printk.time=1 nokaslr mitigations=off clearcpuid=mwaitx panic=-1 rdinit=/init';

interface BuiltKernel {
  id: string;
  elf: string;
  cpu: { nrips?: boolean };
  cases: string[];
}

const say = (s: string): void => void process.stderr.write(`kvm-bochs: ${s}\n`);

/** The suite kernels of `filters`, built by the CLI (`svmconf build --json`). */
async function suiteKernels(filters: string[]): Promise<BuiltKernel[]> {
  const r = await execa('node', [join(ROOT, 'bin', 'svmconf.js'), 'build', ...filters.flatMap((f) => ['--filter', f]), '--json'], { cwd: ROOT });
  return JSON.parse(String(r.stdout)) as BuiltKernel[];
}

async function staticHelper(work: string): Promise<string> {
  const helper = join(work, 'svmconf-kvm');
  writeCHeader(join(work, 'svmconf-arch.h'));
  const sources = (await readdir(NATIVE_DIR)).filter((f) => f.endsWith('.c')).map((f) => join(NATIVE_DIR, f));
  await execa('nice', ['-n', '15', process.env.NATIVE_CC ?? 'cc', '-O2', '-std=c11', '-D_GNU_SOURCE', '-static', '-I', work, '-o', helper, ...sources]);
  return helper;
}

async function busybox(work: string): Promise<Uint8Array> {
  const debs = await readdir(join(TCGHOST_DIR, 'debs'));
  const deb = debs.filter((n) => n.startsWith('busybox-static_')).sort().pop();
  if (!deb) throw new Error('busybox-static is not in build/tcghost/debs: run make tcghost');
  const into = join(work, 'busybox');
  await mkdir(into, { recursive: true });
  await execa('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./bin/busybox', 'sh', join(TCGHOST_DIR, 'debs', deb), into]);
  return readFile(join(into, 'bin', 'busybox'));
}

/** The initramfs: busybox, KVM's modules in load order, the static helper, the kernels with their arguments, /init. */
async function initramfs(work: string, kernels: BuiltKernel[]): Promise<Buffer> {
  const k = pinnedKernel(KERNEL_PEER);
  const order = (await readFile(join(k.modsDir, 'order'), 'utf8')).split('\n').filter((l) => l.trim() !== '' && !SKIP_MODULES.test(l.trim().split(/\s+/)[0]!));
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'kernels', 'mods', 'proc', 'sys', 'tmp'].map((d): CpioEntry => ({ name: d, kind: 'dir', mode: 0o755 })),
    { name: 'init', kind: 'file', mode: 0o755, data: await readFile(INIT) },
    { name: 'bin/busybox', kind: 'file', mode: 0o755, data: await busybox(work) },
    { name: 'bin/sh', kind: 'symlink', mode: 0o777, data: 'busybox' },
    { name: 'bin/svmconf-kvm', kind: 'file', mode: 0o755, data: await readFile(await staticHelper(work)) },
    { name: 'mods/order', kind: 'file', mode: 0o644, data: `${order.join('\n')}\n` },
  ];
  for (const line of order) {
    const file = line.trim().split(/\s+/)[0]!;
    entries.push({ name: `mods/${file}`, kind: 'file', mode: 0o644, data: await readFile(join(k.modsDir, file)) });
  }
  kernels.forEach((kern, i) => {
    const name = `k${i}`;
    const nrips = kern.cpu.nrips === undefined ? 'any' : kern.cpu.nrips ? '1' : '0';
    // the same arguments as runner/backends/kvm.ts gives the helper: the whole batch, the suite's guest RAM
    entries.push({ name: `kernels/${name}.args`, kind: 'file', mode: 0o644, data: `start=0\n${nrips}\n${GUEST_RAM_MIB}\n` });
  });
  for (const [i, kern] of kernels.entries()) entries.push({ name: `kernels/k${i}.elf`, kind: 'file', mode: 0o644, data: await readFile(kern.elf) });
  return gzipSync(cpioNewc(entries), { level: 9 });
}

/** grub.cfg: serial terminal, no menu wait, the pinned kernel with the initramfs. */
function grubCfg(): string {
  return [
    'serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1',
    'terminal_input serial',
    'terminal_output serial',
    'set timeout=0',
    'menuentry "kvm-bochs" {',
    '  echo "KVMBOCHS grub loading"',
    `  linux /vmlinuz ${LINUX_CMDLINE}`,
    '  initrd /initrd.gz',
    '  boot',
    '}',
    '',
  ].join('\n');
}

async function buildIso(dir: string, kernels: BuiltKernel[]): Promise<string> {
  const work = join(dir, 'work');
  await rm(work, { recursive: true, force: true });
  const iso = join(work, 'iso');
  await mkdir(join(iso, 'boot', 'grub'), { recursive: true });
  await writeFile(join(iso, 'boot', 'grub', 'grub.cfg'), grubCfg());
  await writeFile(join(iso, 'vmlinuz'), await readFile(pinnedKernel(KERNEL_PEER).vmlinuz));
  await writeFile(join(iso, 'initrd.gz'), await initramfs(work, kernels));
  const out = join(dir, 'kvm-bochs.iso');
  // BIOS only: Bochs' BIOS boots the El Torito image; the EFI half would only grow the ISO
  await execa('nice', ['-n', '15', 'grub-mkrescue', '-d', '/usr/lib/grub/i386-pc', '-o', out, iso], { all: true });
  return out;
}

/** Boot the ISO; returns when Bochs ends, the init says done, or `limitMs` passed. */
async function boot(dir: string, iso: string, o: { megs: number; ips: number; limitMs: number; hostBochs: boolean }): Promise<void> {
  // --host-bochs: the host's Bochs (2.7 on Debian 12) instead of the pin, as the bochs-ryzen column runs it
  const l: PeerLaunch = o.hostBochs
    ? { peer: 'host', kind: 'bochs', file: BOCHS_BINARY, args: ['-q'], env: {}, binary: BOCHS_BINARY, versionArgs: ['--help'], bios: BOCHS_BIOS.file, vgabios: BOCHS_VGABIOS.file }
    : pinnedLaunch(BOCHS_PEER);
  const run = join(dir, 'run');
  await rm(run, { recursive: true, force: true });
  await mkdir(run, { recursive: true });
  await writeFile(join(run, 'bochsrc'), bochsrc({ cpuModel: 'ryzen', cdrom: iso, megs: o.megs, ips: o.ips, bios: l.bios!, vgabios: l.vgabios!, com1: 'com1.out', log: 'bochs.log' }));
  await writeFile(join(run, 'dbg.rc'), DEBUGGER_SCRIPT);
  await writeFile(join(run, 'com1.out'), '');
  const vmm = withParentDeath(l.file, [...l.args, '-f', 'bochsrc', '-rc', 'dbg.rc']);
  const t0 = performance.now();
  const child = spawn('nice', ['-n', '15', 'unshare', '-rn', vmm.file, ...vmm.args], { cwd: run, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...l.env } });
  let output = '';
  child.stdout.on('data', (c: Buffer) => void (output += c.toString('latin1')));
  child.stderr.on('data', (c: Buffer) => void (output += c.toString('latin1')));
  let done = false;
  const ended = new Promise<void>((resolve) => child.on('close', () => ((done = true), resolve())));
  const log = await open(join(dir, 'console.log'), 'w');
  let offset = 0;
  let partial = '';
  let finished = false;
  const stamp = (): string => ((performance.now() - t0) / 1000).toFixed(1).padStart(7);
  const readNew = async (): Promise<void> => {
    const fh = await open(join(run, 'com1.out'), 'r');
    try {
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        partial += buf.subarray(0, bytesRead).toString('latin1');
      }
    } finally {
      await fh.close();
    }
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const text = `${stamp()} ${line.replace(/\r$/, '')}\n`;
      await log.write(text);
      process.stdout.write(text);
      if (line.startsWith('KVMBOCHS done')) finished = true;
    }
  };
  try {
    while (!done && !finished && performance.now() - t0 < o.limitMs) {
      await Promise.race([ended, new Promise((r) => setTimeout(r, 200))]);
      await readNew();
    }
    // poweroff -f reaches Bochs through ACPI; give it a moment, then end the group anyway
    if (!done) await Promise.race([ended, new Promise((r) => setTimeout(r, finished ? 5000 : 0))]);
    if (!done && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    await ended;
    await readNew();
    if (partial) await log.write(`${stamp()} ${partial}\n`);
    await log.write(`${stamp()} [host] Bochs ended (${finished ? 'init done' : done ? 'on its own' : 'time limit, killed'}); its output: ${output.trim().split('\n').slice(-4).join(' | ')}\n`);
  } finally {
    await log.close();
  }
  say(`console log with wall seconds: ${join(dir, 'console.log')}; Bochs' log: ${join(run, 'bochs.log')}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      filter: { type: 'string', multiple: true, default: ['svm.vmmcall/*'] },
      ips: { type: 'string', default: String(BOCHS_IPS) },
      megs: { type: 'string', default: '1024' },
      'limit-min': { type: 'string', default: '25' },
      'no-build': { type: 'boolean', default: false },
      kernel: { type: 'string', default: KERNEL_PEER },
      'host-bochs': { type: 'boolean', default: false },
    },
  });
  KERNEL_PEER = values.kernel;
  await mkdir(OUT_DIR, { recursive: true });
  const iso = join(OUT_DIR, 'kvm-bochs.iso');
  if (!values['no-build'] || !existsSync(iso)) {
    const kernels = await suiteKernels(values.filter);
    say(`kernels: ${kernels.map((k, i) => `k${i}=${k.id} (${k.cases.join(', ')})`).join('; ')}`);
    await writeFile(join(OUT_DIR, 'kernels.json'), `${JSON.stringify(kernels, null, 2)}\n`);
    await buildIso(OUT_DIR, kernels);
    say(`image: ${iso}`);
  }
  await boot(OUT_DIR, iso, { megs: Number(values.megs), ips: Number(values.ips), limitMs: Number(values['limit-min']) * 60_000, hostBochs: values['host-bochs'] });
}

if (basename(process.argv[1] ?? '') === 'run.ts') {
  main().catch((e: unknown) => {
    say(e instanceof Error ? e.message : String(e));
    process.exit(2);
  });
}
