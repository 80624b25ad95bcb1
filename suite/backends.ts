// The backends of a run: every backend svmconf knows in matrix column order, the ones that run
// only when named, the reference model columns a Bochs flavour is compared with, and the probe
// that stamps each backend's CPU (runner/cpu.ts) and picks the model's profile from the family
// of a hardware backend's CPU.

import type { BackendInfo, CpuIdentity, HostInfo } from '../core/types.ts';
import { DEFAULT_PROFILE, findProfile, withSvmEdx, type Profile } from '../model/profile.ts';
import type { Backend } from '../runner/backend.ts';
import { bochsBackends, bochsPeerBackends, type BochsBackend } from '../runner/backends/bochs.ts';
import { CONSOLE_BACKEND, consoleBackend, type ConsoleOptions } from '../runner/backends/console.ts';
import { consoleLogBackend } from '../runner/backends/console-log.ts';
import { kvmNativeBackend, type KvmBackendOptions } from '../runner/backends/kvm.ts';
import { kvmTcgBackend, kvmTcgPeerBackends } from '../runner/backends/kvm-tcg.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { qemuKvmBackend, qemuPeerBackends, qemuTcgBackend } from '../runner/backends/qemu.ts';
import { backendCpu, parseMachineCpu } from '../runner/cpu.ts';
import { probeSafely } from '../runner/schedule.ts';
import { UsageError } from './errors.ts';
import { compareShortVersions } from '../runner/peers/pins.ts';
import { columnFamily, familyOf } from '../core/columns.ts';
import { hostPackages } from '../runner/host-packages.ts';
import { profileOption } from './select.ts';

export type Probed = Array<{ backend: Backend; info: BackendInfo }>;

/** The console backend's commands: the options, else SVMCONF_CONSOLE_CMD / SVMCONF_BOOT_CMD. */
export function consoleOptions(o: { consoleCmd?: string; bootCmd?: string } = {}): ConsoleOptions {
  const consoleCmd = o.consoleCmd ?? process.env.SVMCONF_CONSOLE_CMD;
  const bootCmd = o.bootCmd ?? process.env.SVMCONF_BOOT_CMD;
  return { ...(consoleCmd ? { consoleCmd } : {}), ...(bootCmd ? { bootCmd } : {}) };
}

/** Every backend svmconf knows, in matrix column order. */
export function allBackends(profile: Profile = DEFAULT_PROFILE, console: ConsoleOptions = consoleOptions(), kvm: KvmBackendOptions = {}, consoleLog?: string): Backend[] {
  // a saved console log (parse-log, --console-log) stands in for the live console
  return [
    modelBackend({ profile }), qemuTcgBackend(), ...newestPeers(qemuPeerBackends()).newest, ...bochsBackends(), ...newestPeers(bochsPeerBackends()).newest,
    kvmNativeBackend(kvm), qemuKvmBackend(),
    // KVM on QEMU TCG with the newest pinned kernel (its own guest; the older kernels when named)
    ...newestPeers(kvmTcgPeerBackends(kvm)).newest,
    consoleLog !== undefined ? consoleLogBackend(consoleLog) : consoleBackend(console),
  ];
}

/** Newest first, by the pin version after the `@` of the column name. */
const pinOf = (name: string): string => name.slice(name.indexOf('@') + 1);
const newerFirst = (a: Backend, b: Backend): number => compareShortVersions(pinOf(b.name), pinOf(a.name));

/**
 * The pinned columns of one family split into the newest version of each family (run by default,
 * beside the host's own column) and the older pins (run when named), docs/peers.md "Columns by version".
 */
export function newestPeers(columns: Backend[]): { newest: Backend[]; older: Backend[] } {
  const newest: Backend[] = [];
  const older: Backend[] = [];
  for (const family of [...new Set(columns.map((c) => familyOf(c.name)))]) {
    const [first, ...rest] = columns.filter((c) => familyOf(c.name) === family).sort(newerFirst);
    if (first) newest.push(first);
    older.push(...rest);
  }
  return { newest, older };
}

/** The name of the model column that runs under `profile` as the reference of another backend. */
export function referenceModelName(profile: string): string {
  return `model@${profile}`;
}

/**
 * Backends compared with the model under another profile than the run's (the Bochs flavours,
 * `referenceProfile`): add a model column under that profile, placed after the run's model, and
 * point the backend's `reference` at it; the run's own profile needs no extra column.
 */
export async function withReferenceModels(probed: Probed, profile: Profile): Promise<Probed> {
  const extra: Probed = [];
  const hasModel = probed.some((b) => b.info.name === 'model');
  for (const b of probed) {
    const { referenceProfile: want, referenceSvmEdx } = b.backend as Partial<BochsBackend>;
    if (want === undefined || !b.info.available) continue;
    const reference = referenceSvmEdx === undefined ? profileOption(want) : withSvmEdx(profileOption(want), referenceSvmEdx);
    if (reference === profile && hasModel) {
      b.info.reference = 'model';
      continue;
    }
    // one reference column per profile and SVM feature word: Bochs 3.1's ryzen shows more SVM
    // features (8000_000A EDX) than 2.7's, so the two are compared with two models of amd-17h
    const sameProfile = extra.filter((e) => e.info.name === referenceModelName(want) || e.info.name.startsWith(`${referenceModelName(want)}:`));
    const twin = sameProfile.find((e) => (e.backend as { svmEdx?: number }).svmEdx === referenceSvmEdx);
    const name = twin?.info.name ?? (sameProfile.length === 0 ? referenceModelName(want) : `${referenceModelName(want)}:edx=0x${(referenceSvmEdx ?? 0).toString(16)}`);
    if (!twin) {
      const backend = Object.assign(modelBackend({ profile: reference, name }), { svmEdx: referenceSvmEdx });
      const info = await probeSafely(backend);
      // a reference column names itself (report/run-cpu.ts tells it from the run's model so)
      info.reference = name;
      extra.push({ backend, info });
    }
    b.info.reference = name;
  }
  const at = probed.findIndex((b) => b.info.name === 'model') + 1;
  return [...probed.slice(0, at), ...extra, ...probed.slice(at)];
}

/**
 * Backends run only when named: the model under the virtual L0 (model/l0/), kvm-tcg on the host's
 * QEMU and bookworm's kernel (runner/backends/kvm-tcg.ts), and the older pinned versions of each
 * peer (the newest runs by default: newestPeers).
 */
export function namedOnlyBackends(profile: Profile, kvm: KvmBackendOptions = {}): Backend[] {
  return [modelBackend({ profile, l0: true }), kvmTcgBackend(kvm), ...newestPeers(qemuPeerBackends()).older, ...newestPeers(bochsPeerBackends()).older, ...newestPeers(kvmTcgPeerBackends(kvm)).older];
}

/**
 * Probe the backends named (none: every backend of allBackends, the console only when configured
 * or given a log); `listAll`: every backend as it is, without reference columns (`svmconf backends`).
 */
export async function probeAll(
  names: string[],
  profile: Profile = DEFAULT_PROFILE,
  console: ConsoleOptions = consoleOptions(),
  listAll = false,
  kvm: KvmBackendOptions = {},
  consoleLog?: string,
): Promise<Probed> {
  const known = [...allBackends(profile, console, kvm, consoleLog), ...(names.length ? namedOnlyBackends(profile, kvm) : [])];
  const unknown = names.filter((n) => !known.some((b) => b.name === n));
  if (unknown.length) throw new UsageError(`unknown backend ${unknown.join(', ')} (known: ${known.map((b) => b.name).join(', ')})`);
  // By default the console backend takes part only when a console command (or a saved log) is given.
  const chosen = names.length ? known.filter((b) => names.includes(b.name)) : known.filter((b) => listAll || b.name !== CONSOLE_BACKEND || console.consoleCmd || consoleLog !== undefined);
  const probed = await Promise.all(chosen.map(async (backend) => ({ backend, info: await probeSafely(backend) })));
  // the host's own columns: the exact Debian versions, as a pinned peer's column states them
  await Promise.all(probed.map(async ({ info }) => {
    if (info.available && info.peer === undefined && info.packages === undefined) {
      const pkgs = await hostPackages(columnFamily(info));
      if (Object.keys(pkgs).length) info.packages = pkgs;
    }
  }));
  return listAll ? probed : withReferenceModels(probed, profile);
}

/** What a run asks of its backends (the options of `run` and `parse-log`). */
export interface BackendChoice {
  backend: string[];
  /** Absent: the default profile, or the family table's profile for the CPU of a hardware backend. */
  profile?: string;
  machineCpu?: string;
  /** The console machine's CPU name (`model name` of its /proc/cpuinfo), for records and their directory. */
  machineName?: string;
  /** A saved console log to read instead of attaching to a console (parse-log). */
  consoleLog?: string;
  consoleCmd?: string;
  bootCmd?: string;
  torture?: boolean;
  tortureEvery?: number;
  tortureControl?: boolean;
}

/** The kvm and kvm-tcg backends' options from `run`'s. */
export function kvmOptions(o: BackendChoice): KvmBackendOptions {
  if (!o.torture) {
    if (o.tortureEvery !== undefined || o.tortureControl) throw new UsageError(`${o.tortureControl ? '--torture-control' : '--torture-every'} needs --torture`);
    return {};
  }
  return { torture: true, ...(o.tortureEvery !== undefined ? { tortureEvery: o.tortureEvery } : {}), ...(o.tortureControl ? { tortureControl: true } : {}) };
}

/**
 * Probe the run's backends and put each one's CPU (runner/cpu.ts) into its BackendInfo; without
 * --profile, the model follows the profile the family table gives for the CPU of the run's hardware
 * backend (kvm, console), so a hardware run is compared with its own family.
 */
export async function probeWithCpus(o: BackendChoice, host: HostInfo): Promise<{ backends: Probed; profile: Profile; note?: string }> {
  let machineCpu: CpuIdentity | undefined;
  if (o.machineCpu !== undefined) {
    try {
      machineCpu = parseMachineCpu(o.machineCpu, o.machineName);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  let profile = o.profile !== undefined ? profileOption(o.profile) : DEFAULT_PROFILE;
  const stamp = (list: Probed) => {
    for (const { info } of list) {
      const cpu = backendCpu(info, { host, profile, ...(machineCpu ? { machineCpu } : {}) });
      if (cpu) info.cpu = cpu;
    }
    return list;
  };
  let backends = stamp(await probeAll(o.backend, profile, consoleOptions(o), false, kvmOptions(o), o.consoleLog));
  let note: string | undefined;
  if (o.profile === undefined) {
    const hw = backends.find((b) => b.info.kind === 'hardware' && b.info.available && b.info.cpu)?.info;
    const wanted = hw?.cpu?.profile !== undefined ? findProfile(hw.cpu.profile) : undefined;
    if (hw?.cpu && wanted) {
      note = `model profile ${wanted.name}: the family table's profile for ${hw.name}'s CPU (${hw.cpu.familyName}, family ${hw.cpu.family.toString(16)}h model ${hw.cpu.model.toString(16)}h)`;
      if (wanted !== profile) {
        profile = wanted;
        backends = stamp(await probeAll(o.backend, profile, consoleOptions(o), false, kvmOptions(o), o.consoleLog));
      }
    }
  }
  return { backends, profile, ...(note ? { note } : {}) };
}
