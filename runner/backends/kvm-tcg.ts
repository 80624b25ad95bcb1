// `kvm-tcg`: the native KVM runner (the `kvm` backend's helper, unchanged) run on the TCG host, a
// Linux guest of QEMU TCG whose kvm_amd runs on QEMU's SVM emulation (runner/tcghost/). The
// records are KVM's handling of the kernels (its nested SVM, EVENTINJ and EXITINTINFO code, its
// save and restore under --torture) on top of QEMU TCG's SVM and event delivery, so a divergence
// here is KVM's or QEMU's: the column is an emulator's (kind `emulator`), never an AMD CPU's (its
// CPU is QEMU's CPU model, and `svmconf record` refuses it).
//
// Built for a machine without SVM: it is how the runner's KVM code paths are tested here and in CI.

import { execa } from 'execa';
import type { BackendInfo } from '../../core/types.ts';
import { parseCpuinfo, unavailableFeatures } from '../probe.ts';
import { identify } from '../../model/profiles/identity.ts';
import { parseQemuVersion } from './qemu.ts';
import { kvmNativeBackend, type KvmBackend, type KvmBackendOptions } from './kvm.ts';
import { GUEST_HELPER, TCGHOST_CPU, TcgHost } from '../tcghost/host.ts';
import { readyImage, type TcgHostImage } from '../tcghost/image.ts';

export const KVM_TCG_BACKEND = 'kvm-tcg';

/** One TCG host per process, started by the first probe and shared by every kvm-tcg instance. */
let shared: Promise<{ host: TcgHost; image: TcgHostImage; qemuVersion: string }> | undefined;

async function startShared(): Promise<{ host: TcgHost; image: TcgHostImage; qemuVersion: string }> {
  const image = await readyImage();
  const v = await execa('qemu-system-x86_64', ['--version'], { reject: false });
  if (v.exitCode !== 0) throw new Error('qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)');
  const host = await TcgHost.start({ image });
  return { host, image, qemuVersion: parseQemuVersion(String(v.stdout)) ?? '?' };
}

/** Power the shared TCG host off (the CLI does at the end of a run; process exit kills it anyway). */
export async function stopTcgHost(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s) await (await s.catch(() => undefined))?.host.stop();
}

export function kvmTcgBackend(opts: Omit<KvmBackendOptions, 'name' | 'kind' | 'helper' | 'spawn' | 'fs' | 'helperExists' | 'versionNote'> = {}): KvmBackend {
  let ctx: { host: TcgHost; image: TcgHostImage; qemuVersion: string } | undefined;
  const inner = kvmNativeBackend({
    ...opts,
    name: KVM_TCG_BACKEND,
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
      shared ??= startShared();
      ctx = await shared;
    } catch (e) {
      shared = undefined;
      const reason = (e as Error).message;
      return { name: KVM_TCG_BACKEND, kind: 'emulator', available: false, reason, features: unavailableFeatures(reason) };
    }
    const info = await inner.probe();
    // the CPU its records show: QEMU's `max` under TCG, as the guest's /proc/cpuinfo reads it
    const cpu = parseCpuinfo((await ctx.host.fs.readText('/proc/cpuinfo')) ?? '');
    if (cpu.family >= 0) {
      info.cpu = identify(cpu, `QEMU -cpu ${TCGHOST_CPU} under TCG (emulated), the TCG host's /proc/cpuinfo`, { modelName: cpu.modelName });
    }
    return info;
  }

  return { ...inner, name: KVM_TCG_BACKEND, probe };
}
