// `kvm-tcg`: the native KVM runner (the `kvm` backend's helper, unchanged) run on the TCG host, a
// Linux guest of QEMU TCG whose kvm_amd runs on QEMU's SVM emulation (runner/tcghost/). The
// records are KVM's handling of the kernels (its nested SVM, EVENTINJ and EXITINTINFO code, its
// save and restore under --torture) on top of QEMU TCG's SVM and event delivery, so a divergence
// here is KVM's or QEMU's: the column is an emulator's (kind `emulator`), never an AMD CPU's (its
// CPU is QEMU's CPU model, and `svmconf record` refuses it).
//
// Two kinds of column: `kvm-tcg`, Debian's current kernel package on the host's QEMU (make
// tcghost), and one `kvm-tcg@<version>` per pinned kernel peer (runner/peers/pins.yaml, linux@…)
// on the newest pinned QEMU, so a deviation can be read against today's KVM
// (docs/backends/kvm-tcg.md "Versioned columns").
//
// Built for a machine without SVM: it is how the runner's KVM code paths are tested here and in CI.

import { execa } from 'execa';
import type { BackendInfo } from '../../core/types.ts';
import { columnName } from '../../core/columns.ts';
import { parseCpuinfo, unavailableFeatures } from '../probe.ts';
import { identify } from '../../model/profiles/identity.ts';
import { parseQemuVersion } from './qemu.ts';
import { kvmNativeBackend, type KvmBackend, type KvmBackendOptions } from './kvm.ts';
import { GUEST_HELPER, TCGHOST_CPU, TcgHost } from '../tcghost/host.ts';
import { peerImageDir, readyImage, readyPeerImage, type TcgHostImage } from '../tcghost/image.ts';
import { peerStatus, peerVersion, pinnedKernel, pinnedLaunch } from '../peers/launch.ts';
import { compareShortVersions, loadPins, type PeerPin, type Pins } from '../peers/pins.ts';

export const KVM_TCG_BACKEND = 'kvm-tcg';

/** A running TCG host and what a column says about it. */
interface HostContext {
  host: TcgHost;
  image: TcgHostImage;
  qemuVersion: string;
  /** Exact versions of the peers' packages (pinned columns only). */
  packages?: Record<string, string>;
}

/**
 * The TCG hosts of this process, by column name: each started by its column's first probe and
 * shared by every instance of that column. Columns of different kernels run their hosts side by
 * side (the scheduler interleaves the backends of a run, runner/schedule.ts).
 */
const hosts = new Map<string, Promise<HostContext>>();

async function startDefault(): Promise<HostContext> {
  const image = await readyImage();
  const v = await execa('qemu-system-x86_64', ['--version'], { reject: false });
  if (v.exitCode !== 0) throw new Error('qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)');
  const host = await TcgHost.start({ image });
  return { host, image, qemuVersion: parseQemuVersion(String(v.stdout)) ?? '?' };
}

/** The pinned kernel `kernel` (linux@7.3) on the pinned QEMU `qemu` (qemu@11.1); PeerError naming the install command when one is missing. */
async function startPeer(kernel: string, qemu: string, pins: Pins): Promise<HostContext> {
  const files = pinnedKernel(kernel, pins);
  const launch = pinnedLaunch(qemu, pins);
  const image = await readyPeerImage(files);
  const qemuVersion = parseQemuVersion(await peerVersion(launch)) ?? '?';
  const host = await TcgHost.start({ image, qemu: launch, dir: peerImageDir(kernel) });
  const packages = Object.fromEntries(
    [kernel, qemu].flatMap((n) => Object.entries(peerStatus(pins.peers.find((p) => p.name === n)!, pins).packages)).sort(([a], [b]) => a.localeCompare(b)),
  );
  return { host, image, qemuVersion, packages };
}

/** What a kvm-tcg column boots, for a reproducer (suite/repro.ts): its image, and the pinned QEMU it runs on (none: the host's). */
export interface TcgColumnFiles {
  image: TcgHostImage;
  /** The pinned QEMU (qemu@11.1) of a versioned column. */
  qemuPeer?: PeerPin;
  /** The pinned kernel (linux@7.3) of a versioned column. */
  kernelPeer?: PeerPin;
}

/**
 * The image and QEMU of the kvm-tcg column `name` (`kvm-tcg`, `kvm-tcg@7.3`), as its host's start
 * takes them (startDefault, startPeer), without booting anything. Throws as they do when a file is missing.
 */
export async function tcgColumnFiles(name: string, pins: Pins = loadPins()): Promise<TcgColumnFiles> {
  if (name === KVM_TCG_BACKEND) return { image: await readyImage() };
  const kernelPeer = pins.peers.find((p) => p.kind === 'linux' && kvmTcgPeerName(p) === name);
  if (!kernelPeer) throw new Error(`${name} is not a kvm-tcg column of runner/peers/pins.yaml`);
  const qemuPeer = newestQemuPin(pins);
  if (!qemuPeer) throw new Error(`no QEMU is pinned in runner/peers/pins.yaml: ${name} runs ${kernelPeer.name} on the newest pinned qemu@…`);
  return { image: await readyPeerImage(pinnedKernel(kernelPeer.name, pins)), qemuPeer, kernelPeer };
}

/** Power every TCG host of this process off (the CLI does at the end of a run; process exit kills them anyway). */
export async function stopTcgHost(): Promise<void> {
  const all = [...hosts.values()];
  hosts.clear();
  await Promise.all(all.map(async (h) => (await h.catch(() => undefined))?.host.stop()));
}

type TcgOptions = Omit<KvmBackendOptions, 'name' | 'kind' | 'helper' | 'spawn' | 'fs' | 'helperExists' | 'versionNote'>;

/** A kvm-tcg column: `name`, its host's start, and the fields its BackendInfo adds (family, peer). */
function tcgColumn(name: string, start: () => Promise<HostContext>, extra: Pick<BackendInfo, 'family' | 'peer'>, opts: TcgOptions): KvmBackend {
  let ctx: HostContext | undefined;
  const inner = kvmNativeBackend({
    ...opts,
    name,
    kind: 'emulator',
    helper: GUEST_HELPER,
    helperExists: async () => true,
    spawn: (args, input, onStdout) => ctx!.host.spawn(args, input, onStdout),
    fs: {
      readText: (p) => ctx!.host.fs.readText(p),
      list: (p) => ctx!.host.fs.list(p),
      openReadWrite: (p) => ctx!.host.fs.openReadWrite(p),
      which: (c) => ctx!.host.fs.which(c),
    },
    versionNote: () => `in QEMU ${ctx?.qemuVersion ?? '?'} TCG (-cpu ${TCGHOST_CPU}), ${ctx?.image.manifest.kernelPackage ?? '?'}`,
  });

  async function probe(): Promise<BackendInfo> {
    try {
      let h = hosts.get(name);
      if (h === undefined) {
        h = start();
        hosts.set(name, h);
      }
      ctx = await h;
    } catch (e) {
      hosts.delete(name);
      const reason = (e as Error).message;
      return { name, kind: 'emulator', available: false, reason, features: unavailableFeatures(reason), ...extra };
    }
    const info = await inner.probe();
    // the CPU its records show: QEMU's `max` under TCG, as the guest's /proc/cpuinfo reads it
    const cpu = parseCpuinfo((await ctx.host.fs.readText('/proc/cpuinfo')) ?? '');
    if (cpu.family >= 0) {
      info.cpu = identify(cpu, `QEMU -cpu ${TCGHOST_CPU} under TCG (emulated), the TCG host's /proc/cpuinfo`, { modelName: cpu.modelName });
    }
    // the guest's CPU is QEMU TCG's: that emulator's entries marked shows_through apply (report/deviations.ts)
    const emulator = { family: 'qemu-tcg', version: `QEMU ${ctx.qemuVersion}` };
    return { ...info, ...extra, emulator, ...(ctx.packages ? { packages: ctx.packages } : {}) };
  }

  return { ...inner, name, probe };
}

/** `kvm-tcg`: Debian's current kernel (build/tcghost/, make tcghost) on the host's QEMU. */
export function kvmTcgBackend(opts: TcgOptions = {}): KvmBackend {
  return tcgColumn(KVM_TCG_BACKEND, startDefault, {}, opts);
}

/** `kvm-tcg@7.3` for the kernel peer linux@7.3. */
export const kvmTcgPeerName = (kernel: PeerPin): string => columnName(KVM_TCG_BACKEND, kernel.short);

/** The newest pinned QEMU (the one every versioned kvm-tcg column runs on), or undefined when none is pinned. */
export function newestQemuPin(pins: Pins): PeerPin | undefined {
  return pins.peers.filter((p) => p.kind === 'qemu').sort((a, b) => compareShortVersions(b.short, a.short))[0];
}

/**
 * One `kvm-tcg@<version>` column per pinned kernel peer, each on the newest pinned QEMU, in
 * pin-file order. A column whose kernel or QEMU is not installed probes as unavailable, with the
 * reason and the command that installs it (runner/peers/launch.ts PeerError).
 */
export function kvmTcgPeerBackends(opts: TcgOptions = {}, pins: Pins = loadPins()): KvmBackend[] {
  const qemu = newestQemuPin(pins);
  return pins.peers
    .filter((p) => p.kind === 'linux')
    .map((k) => {
      const start = async (): Promise<HostContext> => {
        if (!qemu) throw new Error(`no QEMU is pinned in runner/peers/pins.yaml: ${kvmTcgPeerName(k)} runs ${k.name} on the newest pinned qemu@…`);
        return startPeer(k.name, qemu.name, pins);
      };
      return tcgColumn(kvmTcgPeerName(k), start, { family: KVM_TCG_BACKEND, peer: k.name }, opts);
    });
}
