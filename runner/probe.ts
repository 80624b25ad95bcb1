// What this host can run: facts read from /proc and /sys, turned into the availability and
// feature table of core/types.ts BackendInfo, with reasons a user can act on. All reads go through
// the small HostFs interface so unit tests can hand in the /proc and /sys of other machines.

import { constants } from 'node:fs';
import { access, open, readdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { release } from 'node:os';
import { FEATURES, type BackendInfo, type Feature, type HostInfo } from '../core/types.ts';

export interface HostFs {
  /** Text of a file; undefined when it is missing or unreadable. */
  readText(path: string): Promise<string | undefined>;
  /** Entry names of a directory; undefined when it is missing. */
  list(path: string): Promise<string[] | undefined>;
  /** Open a device read-write as a VMM would: undefined when that works, else the error code. */
  openReadWrite(path: string): Promise<string | undefined>;
  /** Absolute path of an executable found on PATH, or undefined. */
  which(command: string): Promise<string | undefined>;
}

export const realHostFs: HostFs = {
  async readText(path) {
    try {
      return await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
  },
  async list(path) {
    try {
      return await readdir(path);
    } catch {
      return undefined;
    }
  },
  async openReadWrite(path) {
    try {
      const fh = await open(path, 'r+');
      await fh.close();
      return undefined;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? String(e);
    }
  },
  async which(command) {
    if (command.includes('/')) {
      return (await isExecutable(command)) ? command : undefined;
    }
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue;
      const p = join(dir, command);
      if (await isExecutable(p)) return p;
    }
    return undefined;
  },
};

/** Whether `p` exists and may be executed by this process. */
export async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface CpuFacts {
  vendor: string;
  family: number;
  model: number;
  stepping: number;
  modelName: string;
  /** `microcode` line of /proc/cpuinfo, when the kernel shows one. */
  microcode?: string;
  flags: Set<string>;
}

export interface HostFacts {
  cpu: CpuFacts;
  kernelRelease: string;
  /** `ok`, or why /dev/kvm cannot be used: `ENOENT`, `EACCES`, … */
  kvmDevice: 'ok' | string;
  /** KVM vendor modules present under /sys/module (kvm_amd, kvm_intel, kvm_pvm, …). */
  kvmModules: string[];
  /** Parameters of kvm_amd when it is loaded (raw text: Y, N, 1, 0). */
  kvmAmd?: { nested?: string; npt?: string };
}

/** Fields of the first processor block of /proc/cpuinfo (all CPUs of a host are alike here). */
export function parseCpuinfo(text: string): CpuFacts {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    if (!fields.has(key)) fields.set(key, line.slice(colon + 1).trim());
  }
  const num = (k: string): number => {
    const v = Number.parseInt(fields.get(k) ?? '', 10);
    return Number.isFinite(v) ? v : -1;
  };
  const microcode = fields.get('microcode');
  return {
    vendor: fields.get('vendor_id') ?? 'unknown',
    family: num('cpu family'),
    model: num('model'),
    stepping: num('stepping'),
    modelName: fields.get('model name') ?? 'unknown',
    ...(microcode ? { microcode } : {}),
    flags: new Set((fields.get('flags') ?? '').split(/\s+/).filter((f) => f !== '')),
  };
}

export async function readHostFacts(fs: HostFs = realHostFs): Promise<HostFacts> {
  const cpu = parseCpuinfo((await fs.readText('/proc/cpuinfo')) ?? '');
  const kernelRelease = ((await fs.readText('/proc/sys/kernel/osrelease')) ?? release()).trim();
  const kvmDevice = (await fs.openReadWrite('/dev/kvm')) ?? 'ok';
  const modules = (await fs.list('/sys/module')) ?? [];
  // kvm itself is the common core; the vendor part (kvm_amd, kvm_intel, or another flavour such
  // as kvm_pvm) decides what a guest can be given.
  const kvmModules = modules.filter((m) => m.startsWith('kvm_')).sort();
  const facts: HostFacts = { cpu, kernelRelease, kvmDevice, kvmModules };
  if (kvmModules.includes('kvm_amd')) {
    const param = async (p: string): Promise<string | undefined> =>
      (await fs.readText(`/sys/module/kvm_amd/parameters/${p}`))?.trim();
    facts.kvmAmd = { nested: await param('nested'), npt: await param('npt') };
  }
  return facts;
}

/** HostInfo for results.json (`host`). */
export function hostInfo(facts: HostFacts): HostInfo {
  return {
    vendor: facts.cpu.vendor,
    family: facts.cpu.family,
    model: facts.cpu.model,
    stepping: facts.cpu.stepping,
    modelName: facts.cpu.modelName,
    kernel: facts.kernelRelease,
    ...(facts.cpu.microcode ? { microcode: facts.cpu.microcode } : {}),
  };
}

export async function probeHostInfo(fs: HostFs = realHostFs): Promise<HostInfo> {
  return hostInfo(await readHostFacts(fs));
}

const isOn = (v: string | undefined): boolean => v === 'Y' || v === 'y' || v === '1';

/** Why /dev/kvm cannot be used, or undefined when it can. */
export function kvmDeviceProblem(facts: HostFacts): string | undefined {
  switch (facts.kvmDevice) {
    case 'ok':
      return undefined;
    case 'ENOENT':
      if (facts.kvmModules.length === 0) return '/dev/kvm does not exist: no KVM module is loaded (modprobe kvm_amd, or kvm_intel)';
      if (facts.kvmModules.length === 1 && facts.kvmModules[0] === 'kvm_pvm') {
        // kvm_pvm refuses to bind when the kernel it loads into is itself a PVM guest (dmesg:
        // "kvm-pvm: this kernel is itself a kvm-pvm guest; not binding"), and then no /dev/kvm appears
        return '/dev/kvm does not exist: kvm_pvm is loaded but did not bind (it does not when this kernel is itself a kvm-pvm guest; see dmesg)';
      }
      return `/dev/kvm does not exist although ${facts.kvmModules.join(', ')} is loaded`;
    case 'EACCES':
    case 'EPERM':
      return `/dev/kvm is not accessible read-write (${facts.kvmDevice}): add the user to group kvm or run as root`;
    default:
      return `/dev/kvm cannot be opened read-write (${facts.kvmDevice})`;
  }
}

/** What each known KVM flavour means for nested SVM, for the reason texts. */
function kvmFlavour(modules: string[]): string {
  if (modules.length === 0) return 'no KVM vendor module is loaded';
  const parts = modules.map((m) => {
    switch (m) {
      case 'kvm_amd':
        return 'kvm_amd';
      case 'kvm_intel':
        return 'kvm_intel (an Intel VMX host: nested SVM needs an AMD host with kvm_amd)';
      case 'kvm_pvm':
        return 'kvm_pvm (PVM, a paravirtual KVM that runs guests without hardware virtualization, so it has no SVM to nest)';
      default:
        return `${m} (not kvm_amd)`;
    }
  });
  return `/dev/kvm is served by ${parts.join(', ')}`;
}

export type FeatureTable = BackendInfo['features'];

/**
 * What KVM on this host can show a guest, from the host facts alone (QEMU is asked separately).
 * Hiding a feature is always possible: the VMM clears the CPUID bit, and KVM follows guest CPUID
 * for nested SVM features (NRIPS, NPT) — absent is true throughout.
 */
export function kvmFeatures(facts: HostFacts): FeatureTable {
  const flags = facts.cpu.flags;
  let svm = '';
  if (!facts.kvmModules.includes('kvm_amd')) {
    svm = `nested SVM needs kvm_amd; ${kvmFlavour(facts.kvmModules)}`;
  } else if (!flags.has('svm')) {
    svm = 'the host CPU shows no svm flag in /proc/cpuinfo (SVM disabled in firmware, or this host is itself a guest without nested SVM)';
  } else if (!isOn(facts.kvmAmd?.nested)) {
    svm = `kvm_amd nested=${facts.kvmAmd?.nested ?? '?'} (/sys/module/kvm_amd/parameters/nested): reload with modprobe kvm_amd nested=1`;
  }
  let npt = svm === '' ? '' : `needs SVM: ${svm}`;
  if (npt === '' && !isOn(facts.kvmAmd?.npt)) {
    npt = `kvm_amd npt=${facts.kvmAmd?.npt ?? '?'} (/sys/module/kvm_amd/parameters/npt): nested paging is off`;
  } else if (npt === '' && !flags.has('npt')) {
    npt = 'the host CPU shows no npt flag in /proc/cpuinfo';
  }
  let nrips = svm === '' ? '' : `needs SVM: ${svm}`;
  if (nrips === '' && !flags.has('nrip_save')) {
    nrips = 'the host CPU shows no nrip_save flag in /proc/cpuinfo (a CPU without NRIPS, e.g. family 10h)';
  }
  const row = (why: string) => ({ present: why === '', absent: true, reason: why });
  return { svm: row(svm), npt: row(npt), nrips: row(nrips) };
}

/** A feature table in which nothing can be offered, for an unavailable backend. */
export function unavailableFeatures(reason: string): FeatureTable {
  const t = {} as FeatureTable;
  for (const f of FEATURES) t[f] = { present: false, absent: false, reason };
  return t;
}

/**
 * Combine two views of a feature (host facts first, then the VMM's own answer): the stricter wins
 * and the first reason given is kept, since the host fact usually says more than the VMM's echo.
 */
export function meetFeatures(a: FeatureTable, b: FeatureTable): FeatureTable {
  const t = {} as FeatureTable;
  for (const f of FEATURES as readonly Feature[]) {
    const x = a[f];
    const y = b[f];
    const reason = x.reason !== '' ? x.reason : y.reason;
    t[f] = { present: x.present && y.present, absent: x.absent && y.absent, reason };
  }
  return t;
}
