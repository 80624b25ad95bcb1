// The TCG host (README "KVM on the TCG host"): Debian's Linux booted under QEMU TCG with SVM
// emulated (`-cpu max`), kvm_amd loaded with nested=1, and an agent (runner/tcghost/init.sh)
// that runs the native KVM runner's helper on request. The `kvm-tcg` backend
// (runner/backends/kvm.ts) runs the helper there exactly as the `kvm` backend runs it on this
// machine: same arguments, same CPUID on stdin, COM1's bytes streamed back, the status line on
// stderr. What it measures is KVM's code (its nested SVM, its save/restore) on QEMU's SVM model,
// never an AMD CPU: its column says so.
//
// The host and the agent share one directory over 9p, the spool; init.sh describes the protocol.
// One guest serves every boot of a run, several at a time (one per guest vCPU is useful).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostFs } from '../probe.ts';
import type { HelperRun, HelperSpawner } from '../backends/kvm.ts';
import { TCGHOST_DIR, type TcgHostImage } from './image.ts';

/** The helper's path inside the guest (image.ts puts it there). */
export const GUEST_HELPER = '/bin/svmconf-kvm';
/** QEMU's CPU for the guest: TCG's SVM (with NPT), as -cpu max offers it in QEMU 7.2. */
export const TCGHOST_CPU = 'max';
const POLL_MS = 20;
/** The agent touches spool/alive about once a second; this long without it, the guest is hung. */
const HEARTBEAT_STALE_MS = 60_000;
/** After a cancel, how long the agent has to report the helper killed. */
const CANCEL_GRACE_MS = 10_000;
/** Linux boots in about 3 s under TCG here; the limit is for a much slower machine. */
const READY_TIMEOUT_MS = 180_000;

export interface TcgHostOptions {
  image: TcgHostImage;
  qemu?: string;
  /**
   * Guest vCPUs (default 1). With 2 (MTTCG, a host thread each) the guest locked up within a
   * minute of a full run here, both vCPUs stuck in its kernel (soft lockups, RCU stalls), so one
   * vCPU it is; boots on the TCG host then run one at a time.
   */
  smp?: number;
  memoryMib?: number;
  dir?: string;
}

export class TcgHostError extends Error {}

/** A file under the spool, read from its start as it grows. */
class Tail {
  private offset = 0;
  constructor(private readonly path: string) {}
  /** New bytes since the last call, as latin1 (COM1 bytes one for one), '' when none. */
  async read(): Promise<string> {
    let fh;
    try {
      fh = await open(this.path, 'r');
    } catch {
      return '';
    }
    try {
      const chunks: Buffer[] = [];
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        chunks.push(buf.subarray(0, bytesRead));
      }
      return Buffer.concat(chunks).toString('latin1');
    } finally {
      await fh.close();
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class TcgHost {
  readonly spool: string;
  private readonly qemu: ChildProcess;
  private exited: string | undefined;
  private nextId = 0;
  private readonly console: string;
  private readonly onExit = (): void => this.killNow();

  private constructor(qemu: ChildProcess, spool: string, consoleLog: string) {
    this.qemu = qemu;
    this.spool = spool;
    this.console = consoleLog;
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
    const args = [
      '-accel', 'tcg',
      '-cpu', TCGHOST_CPU,
      '-smp', String(o.smp ?? 1),
      '-m', String(o.memoryMib ?? 1024),
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-chardev', `file,id=con,path=${consoleLog}`, '-serial', 'chardev:con',
      '-kernel', o.image.vmlinuz, '-initrd', o.image.initrd,
      '-append', 'console=ttyS0 quiet panic=-1',
      '-virtfs', `local,path=${spool},mount_tag=spool,security_model=none`,
    ];
    const qemu = spawn(o.qemu ?? 'qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let qemuErr = '';
    qemu.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (qemuErr.length < 16384) qemuErr += s;
    });
    const host = new TcgHost(qemu, spool, consoleLog);
    const t0 = Date.now();
    while (!existsSync(join(spool, 'ready'))) {
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
    try {
      const age = Date.now() - (await stat(join(this.spool, 'alive'))).mtimeMs;
      if (age > HEARTBEAT_STALE_MS) return `the guest stopped answering ${Math.round(age / 1000)} s ago`;
    } catch {
      return 'the agent never reported alive';
    }
    return undefined;
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
      if (f === undefined) return undefined;
      try {
        return await readFile(join(this.spool, 'facts', f), 'utf8');
      } catch {
        return undefined;
      }
    },
    list: async (path) => {
      if (path !== '/sys/module') return undefined;
      const t = await this.fs.readText('/sys/module');
      return t?.split('\n').filter(Boolean);
    },
    openReadWrite: async (path) => {
      if (path !== '/dev/kvm') return 'ENOENT';
      const t = (await readFile(join(this.spool, 'facts', 'dev-kvm'), 'utf8').catch(() => 'ENOENT')).trim();
      return t === 'ok' ? undefined : t;
    },
    which: async () => undefined,
  };

  /** Run the guest's helper with `args` (the `--kernel` file is copied in), `input` on its stdin. */
  readonly spawn: HelperSpawner = (args, input, onStdout) => {
    const id = `${this.nextId++}`;
    const staging = join(this.spool, `.${id}.tmp`);
    const req = join(this.spool, `${id}.req`);
    const guestReq = `/spool/${id}.req`;
    let cancelled = false;
    let cancelledAt = 0;
    const done = (async () => {
      const problem = await this.problem();
      if (problem !== undefined) return { stderr: '', spawnError: `the TCG host cannot run it: ${problem}${await this.consoleTail()}` };
      await mkdir(staging, { recursive: true });
      const guestArgs = [...args];
      const k = guestArgs.indexOf('--kernel');
      if (k >= 0 && guestArgs[k + 1] !== undefined) {
        await writeFile(join(staging, 'kernel.elf'), await readFile(guestArgs[k + 1]!));
        guestArgs[k + 1] = `${guestReq}/kernel.elf`;
      }
      if (guestArgs.some((a) => a.includes('\n'))) return { stderr: '', spawnError: 'an argument holds a newline (the spool passes one per line)' };
      await writeFile(join(staging, 'args'), guestArgs.map((a) => `${a}\n`).join(''));
      await writeFile(join(staging, 'stdin'), input);
      await rename(staging, req);
      const out = new Tail(join(req, 'out'));
      for (let polls = 0; ; polls++) {
        const chunk = await out.read();
        if (chunk) onStdout(chunk);
        if (existsSync(join(req, 'rc'))) break;
        const problem = polls % 25 === 0 ? await this.problem() : undefined;
        if (problem !== undefined) return { stderr: '', spawnError: `the TCG host failed during the boot: ${problem}${await this.consoleTail()}` };
        if (cancelled && !existsSync(join(req, 'claimed'))) {
          // never claimed: withdraw it so the agent does not start it
          await this.remove(req, id);
          return { stderr: '', signal: 'SIGKILL' };
        }
        if (cancelled && Date.now() - cancelledAt > CANCEL_GRACE_MS) {
          // the agent did not confirm the kill: leave the request behind, report the kill anyway
          return { stderr: '', signal: 'SIGKILL' };
        }
        await sleep(POLL_MS);
      }
      const chunk = await out.read();
      if (chunk) onStdout(chunk);
      const stderr = await readFile(join(req, 'err'), 'utf8').catch(() => '');
      const rc = Number.parseInt(await readFile(join(req, 'rc'), 'utf8'), 10);
      await this.remove(req, id);
      // busybox sh reports a helper killed by signal N as 128+N
      if (rc > 128) return { stderr, signal: rc - 128 === 9 ? 'SIGKILL' : `signal ${rc - 128}` };
      return { stderr, exitCode: rc };
    })();
    const kill = (): void => {
      if (cancelled) return;
      cancelled = true;
      cancelledAt = Date.now();
      void writeFile(join(req, 'cancel'), '').catch(() => {});
    };
    return { kill, done } satisfies HelperRun;
  };

  /**
   * Take a request out of the agent's sight (a rename: its glob matches only *.req, and a claim
   * racing with this finds no directory) before deleting it; deleting in place raced with a claim
   * that re-created `claimed` in a half-deleted directory.
   */
  private async remove(req: string, id: string): Promise<void> {
    const gone = join(this.spool, `.${id}.gone`);
    await rename(req, gone);
    await rm(gone, { recursive: true, force: true });
  }

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
