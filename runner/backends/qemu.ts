// QEMU as a backend, in two flavours: `qemu-tcg` (QEMU's own SVM emulation) and `qemu-kvm` (QEMU
// as the VMM over /dev/kvm, so the host CPU and KVM's nested SVM decide the outcome: the stock
// stack, beside the native runner `kvm` of runner/backends/kvm.ts).
//
// One boot = one QEMU process: the kernel's serial port is QEMU's stdout (`-serial stdio`), the
// kernel leaves through isa-debug-exit at port 0xf4 (docs/protocol.md, END), and every other way
// out (reset, VMM error, silence) is turned into a BootResult that says what happened.
//
// Besides the host's QEMU, each pinned QEMU peer (runner/peers/pins.yaml, docs/peers.md) is a
// column of its own, `qemu-tcg@<version>`: the same backend run through the peer root's loader
// (qemuPeerBackends), compared under the registry entries of `qemu-tcg` that match its version.

import { execa } from 'execa';
import type { Backend, BootRequest, BootResult } from '../backend.ts';
import { BootWatch, bootCases } from '../lines.ts';
import { withParentDeath } from '../pdeath.ts';
import { columnName } from '../../core/columns.ts';
import type { BackendInfo, BackendKind, CpuConfig, Feature } from '../../core/types.ts';
import { GUEST_RAM_MIB } from '../../generator/layout.ts';
import { peerStatus, pinnedLaunch, type PeerDirs } from '../peers/launch.ts';
import { loadPins, type Pins } from '../peers/pins.ts';
import {
  kvmDeviceProblem,
  kvmFeatures,
  meetFeatures,
  readHostFacts,
  realHostFs,
  unavailableFeatures,
  type FeatureTable,
  type HostFs,
} from '../probe.ts';

export type QemuAccel = 'tcg' | 'kvm';

export const QEMU_BINARY = 'qemu-system-x86_64';
export const QEMU_NOT_FOUND = 'qemu-system-x86_64 not found: apt-get install qemu-system-x86 (or run make setup)';

/** QEMU's names for the features of core/types.ts (`-cpu …,+name`). */
export const QEMU_FEATURE_NAME: Record<Feature, string> = {
  svm: 'svm',
  npt: 'npt',
  nrips: 'nrip-save',
};

/** Default firmware, see QemuBackendOptions.bios. */
export const DEFAULT_BIOS = 'qboot.rom';

/** Port and width of isa-debug-exit; the kernel runtime writes its exit value there. */
const DEBUG_EXIT = 'isa-debug-exit,iobase=0xf4,iosize=4';

/** Output of a short-lived command (probes). */
export interface ExecOutput {
  exitCode?: number;
  stdout: string;
  stderr: string;
}
/** `env` is added to the runner's environment. */
export type ExecFn = (file: string, args: string[], env?: Readonly<Record<string, string>>) => Promise<ExecOutput>;

const realExec: ExecFn = async (file, args, env = {}) => {
  const r = await execa(file, args, { reject: false, stdin: 'ignore', timeout: 20_000, env });
  return { exitCode: r.exitCode, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
};

/**
 * How QEMU is started: `file` with `args` before QEMU's own arguments, `env` added to the
 * environment. The host's QEMU is its binary alone; a pinned peer is the root's dynamic loader with
 * the root's binary and data directories (runner/peers/launch.ts PeerLaunch has this shape).
 */
export interface QemuLaunch {
  file: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
}

/** What a peer column adds to its BackendInfo (core/types.ts). */
export type PeerInfo = Required<Pick<BackendInfo, 'family' | 'peer' | 'packages'>>;

export interface QemuBackendOptions {
  accel: QemuAccel;
  /** Backend name in results; `qemu-tcg` / `qemu-kvm` by default. */
  name?: string;
  binary?: string;
  /**
   * CPU model the features are added to. Defaults: TCG `qemu64` (measured as fast as `EPYC`, and
   * fully implemented by TCG so `enforce` works); KVM `host,-arch-capabilities` (`host` alone
   * aborts on this kind of paravirtual KVM when QEMU sets MSR 0x10a, IA32_ARCH_CAPABILITIES,
   * an Intel MSR that SVM tests never need).
   */
  cpuModel?: string;
  /**
   * Add `enforce` to -cpu whenever a feature is requested, so that QEMU refuses to start rather
   * than silently dropping it (as TCG does with nrip-save). Turn off for a model the accelerator
   * does not fully implement (TCG warns about EPYC's xsavec, sha-ni, …).
   */
  enforce?: boolean;
  memoryMib?: number;
  /**
   * Firmware (`-bios`; a bare name is looked up in QEMU's data directory). Default `qboot.rom`,
   * the minimal firmware shipped beside SeaBIOS in qemu-system-data: the machine stays `pc` and
   * QEMU's own multiboot option ROM still loads the kernel, but the boot skips SeaBIOS's POST.
   * Measured here: KVM 3.0 s → 0.12 s per boot (each VM exit is costly on this paravirtual KVM
   * and SeaBIOS makes ~2000 of them), TCG 0.078 s → 0.052 s. Empty string: QEMU's default.
   */
  bios?: string;
  /** After SIGTERM, wait this long before SIGKILL. */
  killGraceMs?: number;
  fs?: HostFs;
  exec?: ExecFn;
  /**
   * Run QEMU through this launch prefix instead of `binary` (a pinned peer). Called at every probe
   * and boot, so a root built or removed meanwhile is seen; what it throws (a PeerError naming the
   * install command) makes the backend unavailable with that text.
   */
  launch?: () => QemuLaunch;
  /** The peer column's extra BackendInfo fields, read when probed. */
  peerInfo?: () => PeerInfo;
}

/** Features shown unless the kernel's cpu config says otherwise. */
function defaultFeatures(accel: QemuAccel): CpuConfig {
  // TCG's qemu64 has SVM but no NPT; nested paging tests need both. Under KVM the host model
  // already shows whatever the host and kvm_amd can give.
  return accel === 'tcg' ? { svm: true, npt: true } : {};
}

export function defaultCpuModel(accel: QemuAccel): string {
  return accel === 'tcg' ? 'qemu64' : 'host,-arch-capabilities';
}

/** The `-cpu` argument for a kernel's cpu config: true → `+feat`, false → `-feat`. */
export function cpuArg(accel: QemuAccel, model: string, cpu: CpuConfig, enforce = true): string {
  const want: CpuConfig = { ...defaultFeatures(accel), ...cpu };
  const parts = [model];
  let required = false;
  for (const [f, on] of Object.entries(want) as Array<[Feature, boolean | undefined]>) {
    if (on === undefined) continue;
    parts.push(`${on ? '+' : '-'}${QEMU_FEATURE_NAME[f]}`);
    required ||= on;
  }
  if (enforce && required) parts.push('enforce');
  return parts.join(',');
}

export interface QemuArgsInput {
  accel: QemuAccel;
  cpuModel: string;
  cpu: CpuConfig;
  elf: string;
  start: number;
  end?: number;
  memoryMib: number;
  enforce?: boolean;
  /** `-bios` file; absent or empty: QEMU's default firmware. */
  bios?: string;
}

export function qemuArgs(o: QemuArgsInput): string[] {
  return [
    '-accel', o.accel,
    '-cpu', cpuArg(o.accel, o.cpuModel, o.cpu, o.enforce ?? true),
    '-m', String(o.memoryMib),
    ...(o.bios ? ['-bios', o.bios] : []),
    // No default devices, no display: COM1 is the only output and goes to stdout.
    '-nodefaults', '-display', 'none', '-serial', 'stdio',
    // A triple fault ends QEMU (status 0) instead of booting the kernel again.
    '-no-reboot',
    '-device', DEBUG_EXIT,
    '-kernel', o.elf,
    '-append', o.end === undefined ? `start=${o.start}` : `start=${o.start} end=${o.end}`,
  ];
}

/** Messages after which QEMU stops the VM and waits forever: the boot is over. */
const VMM_FATAL = [/KVM internal error/, /KVM: entry failed/, /KVM: injection failed/];

/** A one-line summary of a fatal KVM report on QEMU's stderr, with RIP when QEMU dumped registers. */
export function vmmErrorDetail(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim());
  const head = lines.find((l) => VMM_FATAL.some((re) => re.test(l))) ?? 'VMM error';
  const parts = [head];
  // QEMU names the suberror's meaning on its own line after the extra data (e.g. "emulation failure").
  const sub = /Suberror: (\d+)/.exec(head);
  if (sub) {
    const meaning = lines.find((l) => /^[a-z][a-z ]+$/.test(l));
    if (meaning) parts.push(`(${meaning})`);
  }
  // A 64-bit code segment dumps RIP=, legacy and compatibility mode EIP=.
  const rip = /\b([RE]IP)=([0-9a-f]+)/i.exec(stderr);
  if (rip) parts.push(`at ${rip[1]}=${rip[2]}`);
  return parts.join(' ');
}

/** QEMU's own error lines (not its warnings), for launch failures. */
export function qemuErrors(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(qemu-system-\w+|qemu):/.test(l) && !/^[^:]+: warning:/.test(l))
    .map((l) => l.replace(/^[^:]+:\s*/, ''));
}

export interface ExitFacts {
  exitCode?: number;
  signal?: string;
  stderr: string;
  /** Why the runner killed QEMU, if it did. */
  killedFor?: 'timeout' | 'vmm-error';
  /** With killedFor timeout: which limit (runner/lines.ts BootWatch), else the idle timeout. */
  timeoutDetail?: string;
  /** Error code when QEMU could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
  /** What ENOENT means (default QEMU_NOT_FOUND, the host's binary). */
  notFound?: string;
  idleTimeoutMs: number;
  sawOutput: boolean;
}

/** Turn how QEMU ended into a BootResult's end and detail. Pure, so tests can check each way. */
export function classifyExit(x: ExitFacts): Pick<BootResult, 'end' | 'detail'> {
  if (x.spawnError !== undefined) {
    return {
      end: 'crashed',
      detail: `failed to launch: ${x.spawnError === 'ENOENT' ? (x.notFound ?? QEMU_NOT_FOUND) : x.spawnError}`,
    };
  }
  if (x.killedFor === 'timeout') {
    // QEMU exits 0 on SIGTERM, so the timeout is known from the runner's own timer only.
    return { end: 'timeout', detail: x.timeoutDetail ?? `no valid protocol line for ${x.idleTimeoutMs / 1000} s; QEMU killed` };
  }
  if (x.killedFor === 'vmm-error' || VMM_FATAL.some((re) => re.test(x.stderr))) {
    return { end: 'crashed', detail: vmmErrorDetail(x.stderr) };
  }
  const errors = qemuErrors(x.stderr);
  const code = x.exitCode;
  if (code !== undefined && code % 2 === 1 && (errors.length === 0 || x.sawOutput)) {
    // isa-debug-exit: QEMU exits with (value << 1) | 1.
    return { end: 'exited', detail: `debug-exit value ${(code - 1) >> 1} (exit status ${code})` };
  }
  if (code === 0) {
    if (/terminating on signal/.test(x.stderr)) {
      return { end: 'crashed', detail: `QEMU stopped by another process (${errors.join('; ') || 'signal'})` };
    }
    // With -no-reboot a reset request ends QEMU with status 0; a guest only gets there by a
    // triple fault (the kernel has no other way to reset).
    return { end: 'crashed', detail: 'triple fault (reset)' };
  }
  const what = x.sawOutput ? 'QEMU failed' : 'failed to launch';
  const how = code !== undefined ? `exit status ${code}` : `killed by ${x.signal ?? 'a signal'}`;
  // With enforce, the warnings name the features QEMU refused; keep them beside the error.
  const refused = x.stderr
    .split('\n')
    .map((l) => /requested feature: (\S+)/.exec(l)?.[1])
    .filter((f): f is string => f !== undefined);
  const text =
    errors.length > 0
      ? errors.join('; ') + (refused.length > 0 ? ` (${refused.join(', ')})` : '')
      : lastLines(x.stderr, 3);
  return { end: 'crashed', detail: `${what} (${how})${text ? `: ${text}` : ''}` };
}

function lastLines(text: string, n: number): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-n).join(' | ');
}

/** The version QEMU reports, e.g. `7.2.22`. */
export function parseQemuVersion(text: string): string | undefined {
  return /version (\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

/**
 * Ask QEMU whether it can show a -cpu configuration: with `enforce` QEMU checks the features when
 * it realizes the CPU and exits, and a kernel path that does not exist makes it stop right after,
 * before anything runs (about 30 ms, even with KVM).
 */
export async function qemuAcceptsCpu(
  exec: ExecFn,
  launch: QemuLaunch,
  accel: QemuAccel,
  cpu: string,
): Promise<{ ok: boolean; message: string }> {
  const r = await exec(launch.file, [
    ...launch.args,
    '-accel', accel, '-cpu', cpu, '-nodefaults', '-display', 'none', '-no-reboot',
    '-kernel', '/nonexistent/svmconf-cpu-probe',
  ], launch.env);
  const ok = /could not (open|load) kernel/i.test(r.stderr);
  const warnings = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /warning:|doesn't support|not found|error/i.test(l) && !/could not (open|load) kernel/i.test(l))
    .map((l) => l.replace(/^[^:]+:\s*(warning:\s*)?/, ''));
  return { ok, message: warnings[0] ?? lastLines(r.stderr, 2) };
}

export function createQemuBackend(opts: QemuBackendOptions): Backend {
  const accel = opts.accel;
  const name = opts.name ?? (accel === 'tcg' ? 'qemu-tcg' : 'qemu-kvm');
  // under KVM the guest runs on the host's CPU; under TCG on QEMU's emulation of one
  const kind: BackendKind = accel === 'kvm' ? 'hardware' : 'emulator';
  const binary = opts.binary ?? QEMU_BINARY;
  const cpuModel = opts.cpuModel ?? defaultCpuModel(accel);
  const enforce = opts.enforce ?? true;
  const memoryMib = opts.memoryMib ?? GUEST_RAM_MIB;
  const bios = opts.bios ?? DEFAULT_BIOS;
  const killGraceMs = opts.killGraceMs ?? 2000;
  const fs = opts.fs ?? realHostFs;
  const exec = opts.exec ?? realExec;
  const hostLaunch = (file: string): QemuLaunch => ({ file, args: [], env: {} });

  async function probe(): Promise<BackendInfo> {
    const unavailable = (reason: string, version?: string): BackendInfo => ({
      name,
      kind,
      available: false,
      reason,
      features: unavailableFeatures(reason),
      ...(version !== undefined ? { version } : {}),
      // a peer column says which pin it is even when that pin is not installed
      ...(opts.peerInfo ? opts.peerInfo() : {}),
    });
    let launch: QemuLaunch;
    if (opts.launch) {
      try {
        launch = opts.launch();
      } catch (e) {
        return unavailable((e as Error).message);
      }
    } else {
      const path = await fs.which(binary);
      if (path === undefined) {
        return unavailable(binary === QEMU_BINARY ? QEMU_NOT_FOUND : `${binary} not found`);
      }
      launch = hostLaunch(path);
    }
    const v = await exec(launch.file, [...launch.args, '--version'], launch.env);
    const version = parseQemuVersion(v.stdout);
    if (opts.launch && version === undefined) {
      return unavailable(`QEMU printed no version through its launch (exit ${v.exitCode}): ${lastLines(v.stderr || v.stdout, 2)}`);
    }
    const short = version?.split('.').slice(0, 2).join('.') ?? '?';

    let host: FeatureTable | undefined;
    if (accel === 'kvm') {
      const facts = await readHostFacts(fs);
      const problem = kvmDeviceProblem(facts);
      if (problem !== undefined) return unavailable(problem, version);
      host = kvmFeatures(facts);
    }

    // Ask QEMU itself, one feature at a time, with what each needs beside it (NPT and NRIPS are
    // SVM sub-features, CPUID 8000_000A).
    const vmm = {} as FeatureTable;
    for (const f of ['svm', 'npt', 'nrips'] as const) {
      const cfg: CpuConfig = f === 'svm' ? { svm: true } : { svm: true, [f]: true };
      const r = await qemuAcceptsCpu(exec, launch, accel, cpuArg(accel, cpuModel, cfg, true));
      let reason = '';
      if (!r.ok) {
        reason =
          accel === 'tcg' && f === 'nrips'
            ? `QEMU ${short} TCG does not implement NRIPS (nrip-save is dropped)`
            : `QEMU ${short} with ${accel.toUpperCase()} cannot show ${f}: ${r.message}`;
      }
      // Hiding needs only a cleared CPUID bit, which QEMU always grants.
      vmm[f] = { present: r.ok, absent: true, reason };
    }
    const features = host ? meetFeatures(host, vmm) : vmm;
    return {
      name,
      kind,
      available: true,
      reason: '',
      features,
      ...(version !== undefined ? { version: `QEMU ${version}` } : {}),
      ...(opts.peerInfo ? opts.peerInfo() : {}),
    };
  }

  async function boot(req: BootRequest): Promise<BootResult> {
    req.signal?.throwIfAborted();
    const args = qemuArgs({
      accel, cpuModel, cpu: req.cpu, elf: req.kernel.elf, start: req.start, end: req.end, memoryMib, enforce, bios,
    });
    const t0 = performance.now();
    let launch: QemuLaunch;
    try {
      launch = opts.launch ? opts.launch() : hostLaunch(binary);
    } catch (e) {
      // the peer's root went away after the probe
      return { end: 'crashed', lines: [], detail: `failed to launch: ${(e as Error).message}`, seconds: 0 };
    }
    let sawOutput = false;
    let stderr = '';
    let killedFor: ExitFacts['killedFor'] | 'abort';

    // under a parent-death signal, so that QEMU dies with the runner (runner/pdeath.ts)
    const cmd = withParentDeath(launch.file, [...launch.args, ...args]);
    const child = execa(cmd.file, cmd.args, {
      env: launch.env,
      reject: false,
      stdin: 'ignore',
      buffer: false,
      // QEMU ignores nothing but may hang in a paused VM: SIGKILL if SIGTERM did not end it.
      forceKillAfterDelay: killGraceMs,
    });

    const kill = (why: NonNullable<typeof killedFor>): void => {
      if (killedFor !== undefined) return;
      killedFor = why;
      watch.stop();
      child.kill('SIGTERM');
    };
    const watch = new BootWatch({
      idleTimeoutMs: req.idleTimeoutMs, cases: bootCases(req), vmm: 'QEMU', onExpire: () => kill('timeout'),
      ...(req.onLine ? { onLine: req.onLine } : {}),
    });
    const lines = watch.lines;

    child.stdout?.setEncoding('latin1'); // runner/lines.ts says why latin1
    child.stdout?.on('data', (chunk: string) => {
      sawOutput = true;
      watch.push(chunk);
    });

    let fatalTimer: NodeJS.Timeout | undefined;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 256 * 1024) stderr += chunk;
      if (killedFor === undefined && fatalTimer === undefined && VMM_FATAL.some((re) => re.test(stderr))) {
        // QEMU prints the error, dumps the registers, then pauses the VM for ever: kill as soon as
        // the dump is complete ("Code=" is its last line) or shortly after, without a timeout.
        fatalTimer = setTimeout(() => kill('vmm-error'), 250);
      }
      if (fatalTimer !== undefined && /^Code=.*\n/m.test(stderr)) kill('vmm-error');
    });

    const onAbort = (): void => kill('abort');
    req.signal?.addEventListener('abort', onAbort, { once: true });

    let result;
    try {
      result = await child;
    } finally {
      watch.stop();
      clearTimeout(fatalTimer);
      req.signal?.removeEventListener('abort', onAbort);
    }
    watch.end(); // a line cut short: the parser says so
    if (killedFor === 'abort') throw req.signal?.reason ?? new Error('boot aborted');

    const cause = (result as { cause?: unknown }).cause as NodeJS.ErrnoException | undefined;
    // setpriv (runner/pdeath.ts) exits 127 when it cannot start QEMU: as if QEMU had not been found
    const notExecuted = result.exitCode === 127 && /^setpriv: failed to execute/m.test(stderr);
    const spawnError = notExecuted ? 'ENOENT' : result.exitCode === undefined && result.signal === undefined ? (cause?.code ?? String(cause)) : undefined;
    const { end, detail } = classifyExit({
      exitCode: result.exitCode,
      signal: result.signal,
      stderr,
      killedFor,
      ...(watch.expired !== undefined ? { timeoutDetail: watch.expired } : {}),
      spawnError,
      ...(opts.launch ? { notFound: `${launch.file} not found` } : {}),
      idleTimeoutMs: req.idleTimeoutMs,
      sawOutput,
    });
    return { end, lines, detail, seconds: (performance.now() - t0) / 1000 };
  }

  return { name, kind, probe, boot };
}

export function qemuTcgBackend(opts: Omit<QemuBackendOptions, 'accel'> = {}): Backend {
  return createQemuBackend({ ...opts, accel: 'tcg' });
}

export function qemuKvmBackend(opts: Omit<QemuBackendOptions, 'accel'> = {}): Backend {
  return createQemuBackend({ ...opts, accel: 'kvm' });
}

/** The family of every TCG column, the backend name registry entries are filed under (core/columns.ts). */
export const QEMU_TCG_FAMILY = 'qemu-tcg';

/**
 * One qemu-tcg column per pinned QEMU peer (runner/peers/pins.yaml, kind qemu), run from its root
 * through the root's loader (docs/peers.md "Running a peer"). A peer that is not installed is a
 * column that is unavailable, with the reason and the command that installs it.
 */
export function qemuPeerBackends(pins: Pins = loadPins(), dirs: PeerDirs = {}, opts: Omit<QemuBackendOptions, 'accel' | 'name' | 'launch' | 'peerInfo'> = {}): Backend[] {
  return pins.peers
    .filter((p) => p.kind === 'qemu')
    .map((pin) =>
      createQemuBackend({
        ...opts,
        accel: 'tcg',
        name: columnName(QEMU_TCG_FAMILY, pin.short),
        launch: () => pinnedLaunch(pin.name, pins, dirs),
        peerInfo: () => ({ family: QEMU_TCG_FAMILY, peer: pin.name, packages: peerStatus(pin, pins, dirs).packages }),
      }),
    );
}
