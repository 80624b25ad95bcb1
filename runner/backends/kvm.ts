// `kvm`: the native KVM runner. One boot = one svmconf-kvm process (native/kvm/, built by
// `make native`): it creates a VM over /dev/kvm, loads the multiboot kernel, writes COM1's bytes to
// its stdout (parsed like QEMU's serial output) and ends with one status line on stderr, a JSON
// object after "SVMCONF-KVM ", which classifyKvmExit turns into a BootResult. A C helper in its own
// process rather than an addon: no Node ABI to build against, a VMM crash is the boot's CRASH and
// not the runner's, and the helper can be run and straced alone (docs/backends/kvm.md "The helper").
//
// The guest's CPUID is KVM_GET_SUPPORTED_CPUID (asked once, by `svmconf-kvm --probe`) with the
// features the kernel's cpu config hides cleared (runner/kvm-cpuid.ts), handed in on stdin.

import { BootWatch, bootCases } from '../lines.ts';
import { execa } from 'execa';
import { join } from 'node:path';
import type { Backend, BootRequest, BootResult } from '../backend.ts';
import type { BackendInfo, BackendKind, Feature, TortureCounts } from '../../core/types.ts';
import { FEATURES } from '../../core/types.ts';
import { GUEST_RAM_MIB } from '../../generator/layout.ts';
import { ROOT } from '../../generator/index.ts';
import {
  kvmDeviceProblem,
  kvmFeatures,
  meetFeatures,
  isExecutable,
  readHostFacts,
  realHostFs,
  unavailableFeatures,
  type FeatureTable,
  type HostFs,
} from '../probe.ts';
import { cpuidHas, formatCpuid, guestCpuid, type CpuidEntry } from '../kvm-cpuid.ts';

export const KVM_BACKEND = 'kvm';
/** Where `make native` puts the helper (Makefile NATIVE_BIN). */
export const KVM_HELPER = join(ROOT, 'build', 'native', 'svmconf-kvm');
export const KVM_HELPER_MISSING = `the native helper is not built: run \`make native\` (needs a C compiler and linux/kvm.h: Debian gcc, libc6-dev, linux-libc-dev)`;
/** Prefix of the helper's status line (native/kvm/main.c STATUS_PREFIX). */
export const STATUS_PREFIX = 'SVMCONF-KVM ';
/** Timer period of `--torture` at arbitrary points (µs); see KvmBackendOptions.tortureTimerUs. */
export const DEFAULT_TORTURE_TIMER_US = 5000;
/** How long `svmconf-kvm --probe` may take (it asks KVM a few questions; the TCG host is slow). */
const PROBE_TIMEOUT_MS = 60_000;

/** What `svmconf-kvm --probe` prints. */
export interface KvmProbe {
  api: number;
  caps: {
    nested_state: number;
    xsave2: number;
    xsave: boolean;
    xcrs: boolean;
    sregs2: boolean;
    split_irqchip: boolean;
    exception_payload: boolean;
    immediate_exit: boolean;
    debugregs: boolean;
    vcpu_events: boolean;
  };
  cpuid: CpuidEntry[];
}

/** The helper's status line (native/kvm/main.c), as far as the runner reads it. */
export interface KvmStatus {
  end: 'exited' | 'crashed' | 'error' | 'probed' | 'checked';
  reason: string;
  detail?: string;
  value?: number;
  rip?: string;
  suberror?: number;
  suberror_name?: string;
  data?: string[];
  hardware_entry_failure_reason?: string;
  exit_reason?: number;
  type?: number;
  exits?: number;
  seconds?: number;
  torture?: {
    restores: number;
    /** --torture-every (absent from helpers older than it: 1) */
    every?: number;
    /** --torture-control: the cycles stopped before the save (restores counts forced exits) */
    control?: boolean;
    at_exit: number;
    at_timer: number;
    msrs_saved: number;
    msrs_unreadable: number;
    msrs_unwritable: number;
    nested_state_bytes: number;
    saw_guest_mode: boolean;
    unwritable: string[];
  };
}

/** The last status line on the helper's stderr, or undefined (the helper died before writing it). */
export function parseStatus(stderr: string): KvmStatus | undefined {
  const lines = stderr.split('\n').filter((l) => l.startsWith(STATUS_PREFIX));
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  try {
    const v = JSON.parse(last.slice(STATUS_PREFIX.length)) as KvmStatus;
    return typeof v === 'object' && v !== null && typeof v.end === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The torture counts of the helper's status line as BootResult.torture, or undefined without --torture. */
export function tortureCounts(s: KvmStatus): TortureCounts | undefined {
  const t = s.torture;
  if (!t) return undefined;
  return {
    restores: t.restores,
    atExits: t.at_exit,
    atTimer: t.at_timer,
    // absent from helpers older than --torture-every / --torture-control
    every: t.every ?? 1,
    control: t.control ?? false,
    inL2: t.saw_guest_mode,
    msrsLeftOut: t.msrs_unwritable > 0 ? t.unwritable : [],
  };
}

/** `torture: N restores (a at exits, b at timer signals)`, plus MSRs that could not be written back. */
export function tortureNote(s: KvmStatus): string | undefined {
  const t = tortureCounts(s);
  if (!t) return undefined;
  const where = `${t.atExits} at ${t.every > 1 ? `1 exit in ${t.every}` : 'exits'}, ${t.atTimer} at timer signals`;
  if (t.control) return `torture control: ${t.restores} forced exits (${where}), no save/restore`;
  let note = `torture: ${t.restores} restores (${where})`;
  if (t.inL2) note += ', some while L2 ran';
  if (t.msrsLeftOut.length > 0) note += `; MSRs KVM would not restore, left out: ${t.msrsLeftOut.join(' ')}`;
  return note;
}

export interface KvmExitFacts {
  status?: KvmStatus;
  exitCode?: number;
  signal?: string;
  stderr: string;
  killedFor?: 'timeout';
  /** With killedFor timeout: which limit (runner/lines.ts BootWatch), else the idle timeout. */
  timeoutDetail?: string;
  spawnError?: string;
  idleTimeoutMs: number;
}

const at = (s: KvmStatus): string => (s.rip ? ` at RIP=${s.rip}` : '');

/** How the helper ended → BootResult end and detail. Pure, so each way out is tested. */
export function classifyKvmExit(x: KvmExitFacts): Pick<BootResult, 'end' | 'detail'> {
  if (x.spawnError !== undefined) {
    return { end: 'crashed', detail: `failed to launch svmconf-kvm: ${x.spawnError === 'ENOENT' ? KVM_HELPER_MISSING : x.spawnError}` };
  }
  if (x.killedFor === 'timeout') return { end: 'timeout', detail: x.timeoutDetail ?? `no valid protocol line for ${x.idleTimeoutMs / 1000} s; svmconf-kvm killed` };
  const s = x.status;
  if (s === undefined) {
    const tail = x.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-3).join(' | ');
    const how = x.signal ? `killed by ${x.signal}` : `exit status ${x.exitCode ?? '?'}`;
    // A VMM that dies is a crash of this boot only: the runner goes on with the next one.
    return { end: 'crashed', detail: `svmconf-kvm ended without a status line (${how})${tail ? `: ${tail}` : ''}` };
  }
  const note = tortureNote(s);
  const withNote = (d: string): string => (note ? `${d}; ${note}` : d);
  if (s.end === 'exited') {
    const how =
      s.reason === 'debug-exit' ? `debug-exit value ${s.value ?? '?'}` : s.reason === 'shutdown-port' ? 'Shutdown written to port 0x8900' : s.reason === 'hlt' ? `HLT with interrupts off${at(s)}` : s.reason;
    return { end: 'exited', detail: withNote(how) };
  }
  if (s.end === 'crashed') {
    let d: string;
    switch (s.reason) {
      case 'internal-error':
        d = `KVM internal error. Suberror: ${s.suberror ?? '?'} (${s.suberror_name ?? '?'})${at(s)}${s.data?.length ? `, data ${s.data.join(' ')}` : ''}`;
        break;
      case 'fail-entry':
        d = `KVM: entry failed, hardware error ${s.hardware_entry_failure_reason ?? '?'}${at(s)}`;
        break;
      case 'triple-fault':
        d = `triple fault (KVM_EXIT_SHUTDOWN)${at(s)}`;
        break;
      case 'system-event':
        d = `KVM system event ${s.type ?? '?'}${at(s)}`;
        break;
      case 'unexpected-exit':
        d = `unexpected KVM exit reason ${s.exit_reason ?? '?'}${at(s)}`;
        break;
      case 'torture':
        d = `save/restore failed: ${s.detail ?? '?'}${at(s)}`;
        break;
      default:
        d = `${s.reason}: ${s.detail ?? ''}${at(s)}`;
    }
    return { end: 'crashed', detail: withNote(d) };
  }
  return { end: 'crashed', detail: `svmconf-kvm could not start the guest (${s.reason}): ${s.detail ?? ''}` };
}

/** How one run of the helper ended (exit status or signal; spawnError: it never started). */
export interface HelperEnd {
  stderr: string;
  exitCode?: number;
  signal?: string;
  spawnError?: string;
}

/** One run of the helper, on this machine or elsewhere (the TCG host, runner/tcghost/host.ts). */
export interface HelperRun {
  /** Kill it (the run then ends with a signal). */
  kill(): void;
  done: Promise<HelperEnd>;
}

/** Start the helper with `args` and `input` on stdin; COM1's bytes go to onStdout (latin1) as they come. */
export type HelperSpawner = (args: string[], input: string, onStdout: (chunk: string) => void) => HelperRun;

/** The helper as a child process of this one, in a process group of its own so a kill takes everything it is. */
export function nativeSpawner(helper: string, opts: { env?: Record<string, string>; killGraceMs?: number } = {}): HelperSpawner {
  return (args, input, onStdout) => {
    let stderr = '';
    const child = execa(helper, args, {
      reject: false,
      input,
      buffer: false,
      detached: true,
      forceKillAfterDelay: opts.killGraceMs ?? 2000,
      ...(opts.env ? { env: opts.env } : {}),
    });
    child.stdout?.setEncoding('latin1');
    child.stdout?.on('data', (chunk: string) => onStdout(chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 256 * 1024) stderr += chunk;
    });
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const done = child.then((result): HelperEnd => {
      const cause = (result as { cause?: unknown }).cause as NodeJS.ErrnoException | undefined;
      const spawnError = result.exitCode === undefined && result.signal === undefined ? (cause?.code ?? String(cause)) : undefined;
      return {
        stderr,
        ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
        ...(result.signal !== undefined ? { signal: result.signal } : {}),
        ...(spawnError !== undefined ? { spawnError } : {}),
      };
    });
    return { kill, done };
  };
}

/** What one boot asks of the helper (KvmHelperArgs → its command line). */
export interface KvmHelperArgs {
  /** The kernel's path as the helper sees it. */
  elf: string;
  start: number;
  end?: number | undefined;
  memoryMib: number;
  /** --torture with its timer period (µs, 0: only at exits), every nth exit, and the control run. */
  torture?: { timerUs: number; every: number; control: boolean };
}

/**
 * The helper's command line for one boot (native/kvm/main.c usage): the kernel, the multiboot
 * command line (docs/protocol.md), guest RAM, and the CPUID table read from stdin. Pure, so a
 * reproducer (suite/repro.ts) writes exactly the line a boot runs.
 */
export function kvmHelperArgs(o: KvmHelperArgs): string[] {
  const cmdline = o.end === undefined ? `start=${o.start}` : `start=${o.start} end=${o.end}`;
  const args = ['--kernel', o.elf, '--cmdline', cmdline, '--mem-mib', String(o.memoryMib), '--cpuid', '-'];
  const t = o.torture;
  if (t) args.push('--torture', ...(t.timerUs > 0 ? ['--torture-timer-us', String(t.timerUs)] : []), ...(t.every > 1 ? ['--torture-every', String(t.every)] : []), ...(t.control ? ['--torture-control'] : []));
  return args;
}

export interface KvmBackendOptions {
  /** The backend's name (default KVM_BACKEND; the TCG host's is KVM_TCG_BACKEND). */
  name?: string;
  /** What its records are: hardware (default: KVM on this host's CPU); the TCG host's KVM runs on QEMU's emulation, an emulator. */
  kind?: BackendKind;
  /** The helper binary (default KVM_HELPER). */
  helper?: string;
  /** How the helper is started (default nativeSpawner: a child process here). */
  spawn?: HelperSpawner;
  /** Appended to the probed version: where KVM runs, when not on this machine. */
  versionNote?: () => string;
  memoryMib?: number;
  /**
   * Save the whole vCPU, destroy the VM, create a new one and restore, at every exit to user space
   * and at every tick of a timer (native/kvm/state.c). Default: SVMCONF_KVM_TORTURE=1.
   */
  torture?: boolean;
  /** Timer period for torture at arbitrary points (µs); 0 = only at exits. */
  tortureTimerUs?: number;
  /** Torture at every nth exit only (default 1: every exit); the timer is not thinned. */
  tortureEvery?: number;
  /** The control run of torture: the same forced exits, without the save/restore. */
  tortureControl?: boolean;
  killGraceMs?: number;
  /** Extra environment for the helper (the specs' LD_PRELOAD of native/kvm/test/fakekvm.c). */
  env?: Record<string, string>;
  fs?: HostFs;
  /** Runs `helper --probe` (default: through spawn; tests hand in a fake). */
  probeHelper?: (helper: string) => Promise<{ stdout: string; stderr: string; exitCode?: number }>;
  /** Whether the helper exists and is executable. */
  helperExists?: (helper: string) => Promise<boolean>;
}

/** The feature table from what KVM offers (supported CPUID) — hiding is always possible. */
export function cpuidFeatures(cpuid: readonly CpuidEntry[]): FeatureTable {
  const t = {} as FeatureTable;
  for (const f of FEATURES as readonly Feature[]) {
    const has = cpuidHas(cpuid, f);
    t[f] = { present: has, absent: true, reason: has ? '' : `KVM_GET_SUPPORTED_CPUID does not offer ${f}` };
  }
  return t;
}

export interface KvmBackend extends Backend {
  /** The last probe's answer from the helper (after probe()). */
  readonly kvm: () => KvmProbe | undefined;
}

export function kvmNativeBackend(opts: KvmBackendOptions = {}): KvmBackend {
  const helper = opts.helper ?? KVM_HELPER;
  const memoryMib = opts.memoryMib ?? GUEST_RAM_MIB;
  const torture = opts.torture ?? process.env.SVMCONF_KVM_TORTURE === '1';
  const timerUs = opts.tortureTimerUs ?? DEFAULT_TORTURE_TIMER_US;
  const every = opts.tortureEvery ?? 1;
  const control = opts.tortureControl ?? false;
  const killGraceMs = opts.killGraceMs ?? 2000;
  const fs = opts.fs ?? realHostFs;
  const helperExists = opts.helperExists ?? isExecutable;
  const spawnHelper = opts.spawn ?? nativeSpawner(helper, { ...(opts.env ? { env: opts.env } : {}), killGraceMs });
  const probeHelper =
    opts.probeHelper ??
    (async () => {
      let stdout = '';
      const run = spawnHelper(['--probe'], '', (c) => (stdout += c));
      const timer = setTimeout(() => run.kill(), PROBE_TIMEOUT_MS);
      const end = await run.done.finally(() => clearTimeout(timer));
      const exitCode = end.exitCode;
      return { stdout, stderr: end.spawnError ? `${end.stderr}\n${end.spawnError}` : end.stderr, ...(exitCode !== undefined ? { exitCode } : {}) };
    });
  let probed: KvmProbe | undefined;
  const name = opts.name ?? KVM_BACKEND;
  const kind = opts.kind ?? 'hardware';

  async function probe(): Promise<BackendInfo> {
    const unavailable = (reason: string): BackendInfo => ({ name, kind, available: false, reason, features: unavailableFeatures(reason) });
    const facts = await readHostFacts(fs);
    const problems: string[] = [];
    const device = kvmDeviceProblem(facts);
    if (device !== undefined) problems.push(device);
    if (!(await helperExists(helper))) problems.push(helper === KVM_HELPER ? KVM_HELPER_MISSING : `${helper} not found or not executable`);
    if (problems.length > 0) return unavailable(problems.join('; '));

    const r = await probeHelper(helper);
    let p: KvmProbe;
    try {
      p = JSON.parse(r.stdout) as KvmProbe;
      if (!Array.isArray(p.cpuid)) throw new Error('no cpuid table');
    } catch {
      const s = parseStatus(r.stderr);
      return unavailable(`svmconf-kvm --probe failed: ${s?.detail ?? (r.stderr.trim() || `exit status ${r.exitCode}`)}`);
    }
    probed = p;
    const features = meetFeatures(kvmFeatures(facts), cpuidFeatures(p.cpuid));
    const nested = p.caps.nested_state > 0 ? `nested state ${p.caps.nested_state} bytes` : 'no nested state (KVM_CAP_NESTED_STATE 0)';
    return {
      name,
      kind,
      available: true,
      reason: '',
      features,
      version: `KVM API ${p.api}, Linux ${facts.kernelRelease}, ${facts.kvmModules.join('+') || 'kvm'}; ${nested}${opts.versionNote ? `; ${opts.versionNote()}` : ''}${torture ? `; torture${control ? ' control (no save/restore)' : ''} (${every > 1 ? `1 exit in ${every}, ` : ''}timer ${timerUs} µs)` : ''}`,
    };
  }

  async function boot(req: BootRequest): Promise<BootResult> {
    req.signal?.throwIfAborted();
    if (probed === undefined) {
      const info = await probe();
      if (!info.available || probed === undefined) throw new Error(info.reason || 'KVM is not available');
    }
    const cpuid = formatCpuid(guestCpuid(probed.cpuid, req.cpu));
    const args = kvmHelperArgs({ elf: req.kernel.elf, start: req.start, end: req.end, memoryMib, ...(torture ? { torture: { timerUs, every, control } } : {}) });

    const t0 = performance.now();
    let killedFor: 'timeout' | 'abort' | undefined;
    const kill = (why: 'timeout' | 'abort'): void => {
      if (killedFor !== undefined) return;
      killedFor = why;
      watch.stop();
      run.kill();
    };
    const watch = new BootWatch({
      idleTimeoutMs: req.idleTimeoutMs, cases: bootCases(req), vmm: 'svmconf-kvm', onExpire: () => kill('timeout'),
      ...(req.onLine ? { onLine: req.onLine } : {}),
    });
    const lines = watch.lines;
    const run = spawnHelper(args, cpuid, (chunk) => watch.push(chunk));
    const onAbort = (): void => kill('abort');
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let result: HelperEnd;
    try {
      result = await run.done;
    } finally {
      watch.stop();
      req.signal?.removeEventListener('abort', onAbort);
    }
    watch.end();
    if (killedFor === 'abort') throw req.signal?.reason ?? new Error('boot aborted');
    const stderr = result.stderr;
    const spawnError = result.spawnError;
    const status = parseStatus(stderr);
    const { end, detail } = classifyKvmExit({
      ...(status ? { status } : {}),
      ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
      ...(result.signal !== undefined ? { signal: result.signal } : {}),
      stderr,
      ...(killedFor === 'timeout' ? { killedFor } : {}),
      ...(watch.expired !== undefined ? { timeoutDetail: watch.expired } : {}),
      ...(spawnError !== undefined ? { spawnError } : {}),
      idleTimeoutMs: req.idleTimeoutMs,
    });
    const note = status ? tortureNote(status) : undefined;
    const counts = status ? tortureCounts(status) : undefined;
    return { end, lines, detail, seconds: (performance.now() - t0) / 1000, ...(note ? { note } : {}), ...(counts ? { torture: counts } : {}) };
  }

  return { name, kind, probe, boot, kvm: () => probed };
}
