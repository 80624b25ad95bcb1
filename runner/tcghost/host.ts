// The TCG host (docs/backends/kvm-tcg.md): Debian's Linux booted under QEMU TCG with SVM
// emulated (`-cpu max`), kvm_amd loaded with nested=1, and an agent (runner/tcghost/init.sh)
// that runs the native KVM runner's helper on request. The `kvm-tcg` backend
// (runner/backends/kvm-tcg.ts) runs the helper there exactly as the `kvm` backend runs it on this
// machine: same arguments, same CPUID on stdin, COM1's bytes streamed back, the status line on
// stderr. What it measures is KVM's code (its nested SVM, its save/restore) on QEMU's SVM model,
// never an AMD CPU: its column says so.
//
// The host and the agent share one directory over 9p, the spool; init.sh describes the protocol.
// One guest serves every boot of its column in a run, several at a time (one per guest vCPU is
// useful); each kvm-tcg column has its own guest, in its own directory (TcgHostOptions.dir).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostFs } from '../probe.ts';
import type { HelperSpawner } from '../backends/kvm.ts';
import { heartbeatProblem, spoolSpawner } from './spool.ts';
import { TCGHOST_DIR, type TcgHostImage } from './image.ts';
import { withParentDeath } from '../pdeath.ts';

/** The helper's path inside the guest (image.ts puts it there). */
export const GUEST_HELPER = '/bin/svmconf-kvm';
/** QEMU's CPU for the guest: TCG's SVM (with NPT), as -cpu max offers it in QEMU 7.2 and 11.1 (neither with NRIPS). */
export const TCGHOST_CPU = 'max';
/** The agent touches spool/alive about once a second; this long without it, the guest is hung. */
const HEARTBEAT_STALE_MS = 60_000;
/** After a cancel, how long the agent has to report the helper killed. */
const CANCEL_GRACE_MS = 10_000;
/** Linux boots in about 3 s under TCG here; the limit is for a much slower machine. */
const READY_TIMEOUT_MS = 180_000;

/** How QEMU is started: a binary on PATH, or a pinned peer's launch (runner/peers/launch.ts PeerLaunch). */
export interface QemuLaunch {
  file: string;
  /** Before the host's own arguments (a peer's loader options, binary and -L directories). */
  args: readonly string[];
  /** Added to the environment. */
  env?: Readonly<Record<string, string>>;
}

export interface TcgHostOptions {
  image: TcgHostImage;
  /** Default: qemu-system-x86_64 from PATH. */
  qemu?: QemuLaunch;
  /**
   * Guest vCPUs (default 1). With 2 (MTTCG) the guest locked up once during a full run here (soft
   * lockups, RCU stalls), at a time when the agent still leaked a polling watcher per boot (fixed
   * since, so that may have been the cause); not tried again. One vCPU runs the suite in about a
   * minute, boots one at a time.
   */
  smp?: number;
  memoryMib?: number;
  dir?: string;
}

/** Guest RAM of the TCG host (MiB) unless TcgHostOptions.memoryMib says otherwise. */
export const TCGHOST_MEMORY_MIB = 1024;

/**
 * QEMU's arguments for the TCG host (after a peer's launch prefix): TCG with SVM emulated, the
 * guest's console to a file, the kernel and initramfs, and the spool shared over 9p (init.sh
 * mounts it by its tag). Pure, so a reproducer (suite/repro.ts) writes exactly the line a run uses.
 */
export function tcgHostArgs(o: { vmlinuz: string; initrd: string; spool: string; consoleLog: string; smp?: number; memoryMib?: number }): string[] {
  return [
    '-accel', 'tcg',
    '-cpu', TCGHOST_CPU,
    '-smp', String(o.smp ?? 1),
    '-m', String(o.memoryMib ?? TCGHOST_MEMORY_MIB),
    '-nodefaults', '-display', 'none', '-no-reboot',
    '-chardev', `file,id=con,path=${o.consoleLog}`, '-serial', 'chardev:con',
    '-kernel', o.vmlinuz, '-initrd', o.initrd,
    '-append', 'console=ttyS0 quiet panic=-1',
    '-virtfs', `local,path=${o.spool},mount_tag=spool,security_model=none`,
  ];
}

export class TcgHostError extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class TcgHost {
  readonly spool: string;
  private readonly qemu: ChildProcess;
  private exited: string | undefined;
  private readonly console: string;
  private readonly onExit = (): void => this.killNow();

  private constructor(qemu: ChildProcess, spool: string, consoleLog: string) {
    this.qemu = qemu;
    this.spool = spool;
    this.console = consoleLog;
    this.spawn = spoolSpawner({
      dir: spool,
      problem: () => this.problem(),
      context: () => this.consoleTail(),
      cancelGraceMs: CANCEL_GRACE_MS,
    });
    qemu.on('exit', (code, signal) => {
      this.exited = signal ? `killed by ${signal}` : `exit status ${code}`;
    });
    qemu.on('error', (e) => {
      this.exited = `failed to start: ${e.message}`;
    });
    // the guest must not outlive the run, whatever way the run ends
    process.once('exit', this.onExit);
  }

  /** Boot the guest and wait until its agent serves the spool. */
  static async start(o: TcgHostOptions): Promise<TcgHost> {
    const dir = o.dir ?? TCGHOST_DIR;
    await removeStale(dir);
    const spool = join(dir, `spool-${process.pid}`);
    await rm(spool, { recursive: true, force: true });
    await mkdir(spool, { recursive: true });
    const consoleLog = join(dir, `console-${process.pid}.log`);
    const args = tcgHostArgs({ vmlinuz: o.image.vmlinuz, initrd: o.image.initrd, spool, consoleLog, ...(o.smp !== undefined ? { smp: o.smp } : {}), ...(o.memoryMib !== undefined ? { memoryMib: o.memoryMib } : {}) });
    // the TCG host dies with the runner, also when the runner is killed (runner/pdeath.ts)
    const launch = o.qemu ?? { file: 'qemu-system-x86_64', args: [] };
    const cmd = withParentDeath(launch.file, [...launch.args, ...args]);
    const qemu = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'], ...(launch.env ? { env: { ...process.env, ...launch.env } } : {}) });
    let qemuErr = '';
    qemu.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (qemuErr.length < 16384) qemuErr += s;
    });
    const host = new TcgHost(qemu, spool, consoleLog);
    const t0 = Date.now();
    // both markers: requests are refused while alive is missing (init.sh touches it before ready)
    while (!existsSync(join(spool, 'ready')) || !existsSync(join(spool, 'alive'))) {
      if (host.exited !== undefined || Date.now() - t0 > READY_TIMEOUT_MS) {
        const why = host.exited ?? `not ready after ${READY_TIMEOUT_MS / 1000} s`;
        await host.stop();
        throw new TcgHostError(`the TCG host did not come up (QEMU ${why})${qemuErr.trim() ? `: ${qemuErr.trim()}` : ''}${await host.consoleTail()}`);
      }
      await sleep(50);
    }
    return host;
  }

  /** Why the guest can no longer serve (QEMU gone, or the agent's heartbeat stale), or undefined. */
  async problem(): Promise<string | undefined> {
    if (this.exited !== undefined) return `QEMU ${this.exited}`;
    return heartbeatProblem(this.spool, HEARTBEAT_STALE_MS);
  }

  /** The last lines the guest's kernel and init printed, for error messages. */
  async consoleTail(): Promise<string> {
    const text = existsSync(this.console) ? await readFile(this.console, 'latin1') : '';
    const tail = text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '').slice(-5);
    return tail.length ? `; guest console: ${tail.join(' | ')}` : '';
  }

  /** runner/probe.ts's view of the guest: /proc and /sys as init.sh copied them into spool/facts. */
  readonly fs: HostFs = {
    readText: async (path) => {
      const f = FACT_FILES[path];
      return f === undefined ? undefined : this.fact(f);
    },
    list: async (path) => {
      if (path !== '/sys/module') return undefined;
      const t = await this.fs.readText('/sys/module');
      return t?.split('\n').filter(Boolean);
    },
    openReadWrite: async (path) => {
      if (path !== '/dev/kvm') return 'ENOENT';
      const t = ((await this.fact('dev-kvm')) ?? 'ENOENT').trim();
      return t === 'ok' ? undefined : t;
    },
    which: async () => undefined,
  };

  /** A file init.sh wrote under spool/facts, or undefined when it did not. */
  private async fact(name: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.spool, 'facts', name), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Run the guest's helper with `args` (the `--kernel` file is copied in), `input` on its stdin. */
  readonly spawn: HelperSpawner;

  /** Ask the agent to stop and the guest to power off; kill QEMU if it does not within 10 s. */
  async stop(): Promise<void> {
    process.removeListener('exit', this.onExit);
    if (this.exited === undefined) {
      await writeFile(join(this.spool, 'stop'), '').catch(() => {});
      const t0 = Date.now();
      while (this.exited === undefined && Date.now() - t0 < 10_000) await sleep(50);
      this.killNow();
    }
    await rm(this.spool, { recursive: true, force: true });
  }

  private killNow(): void {
    if (this.exited === undefined) this.qemu.kill('SIGKILL');
  }
}

/** Spools and console logs of svmconf processes that are no longer running. */
async function removeStale(dir: string): Promise<void> {
  const names = existsSync(dir) ? await readdir(dir) : [];
  for (const n of names) {
    const pid = /^(?:spool|console)-(\d+)(?:\.log)?$/.exec(n)?.[1];
    if (pid === undefined || Number(pid) === process.pid) continue;
    try {
      process.kill(Number(pid), 0);
    } catch {
      await rm(join(dir, n), { recursive: true, force: true });
    }
  }
}

/** Paths readHostFacts reads → the files init.sh writes under spool/facts. */
const FACT_FILES: Record<string, string> = {
  '/proc/cpuinfo': 'cpuinfo',
  '/proc/sys/kernel/osrelease': 'osrelease',
  '/sys/module': 'modules',
  '/sys/module/kvm_amd/parameters/nested': 'kvm_amd.nested',
  '/sys/module/kvm_amd/parameters/npt': 'kvm_amd.npt',
  '/sys/module/kvm_amd/parameters/nrips': 'kvm_amd.nrips',
};
