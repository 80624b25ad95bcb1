// The host's end of the spool protocol (runner/tcghost/init.sh describes it): a HelperSpawner
// that hands each run of the helper to the agent as a request directory and streams back what
// the helper writes. The TCG host (host.ts) serves it from inside QEMU over 9p; the specs serve it
// with the same agent script run here, against a stand-in helper.

import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HelperEnd, HelperRun, HelperSpawner } from '../backends/kvm.ts';

export interface SpoolOptions {
  /** The spool as this machine sees it. */
  dir: string;
  /** The spool as the agent sees it (default /spool, the guest's mount point). */
  agentDir?: string;
  /** Why the agent cannot serve any more (checked before and during each run), or undefined. */
  problem?: () => Promise<string | undefined>;
  /** Appended to failure messages (the guest console's last lines). */
  context?: () => Promise<string>;
  pollMs?: number;
  /** After a cancel, how long the agent has to report the helper killed (default 10 s). */
  cancelGraceMs?: number;
}

/** A file read from its start as it grows. */
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

/** How the agent's exit status reads: busybox sh reports a helper killed by signal N as 128+N. */
export function agentStatus(rcText: string, stderr: string): HelperEnd {
  const rc = Number.parseInt(rcText, 10);
  if (!Number.isInteger(rc)) return { stderr, spawnError: `the agent wrote an exit status that is not a number: ${JSON.stringify(rcText)}` };
  if (rc > 128) return { stderr, signal: rc - 128 === 9 ? 'SIGKILL' : `signal ${rc - 128}` };
  return { stderr, exitCode: rc };
}

/** Why the agent is not serving, from the age of its heartbeat file (spool/alive), or undefined. */
export async function heartbeatProblem(dir: string, staleMs: number): Promise<string | undefined> {
  try {
    const age = Date.now() - (await stat(join(dir, 'alive'))).mtimeMs;
    return age > staleMs ? `the agent stopped answering ${Math.round(age / 1000)} s ago` : undefined;
  } catch {
    return 'the agent never reported alive';
  }
}

export function spoolSpawner(o: SpoolOptions): HelperSpawner {
  const pollMs = o.pollMs ?? 20;
  const cancelGraceMs = o.cancelGraceMs ?? 10_000;
  const agentDir = o.agentDir ?? '/spool';
  const problem = o.problem ?? (async () => undefined);
  const context = o.context ?? (async () => '');
  let nextId = 0;

  /**
   * Take a request out of the agent's sight (a rename: its glob matches only *.req, and a claim
   * racing with this finds no directory) before deleting it; deleting in place raced with a claim
   * that re-created `claimed` in a half-deleted directory.
   */
  const remove = async (req: string, id: string): Promise<void> => {
    const gone = join(o.dir, `.${id}.gone`);
    await rename(req, gone);
    await rm(gone, { recursive: true, force: true });
  };

  return (args, input, onStdout) => {
    const id = `${nextId++}`;
    const staging = join(o.dir, `.${id}.tmp`);
    const req = join(o.dir, `${id}.req`);
    let cancelled = false;
    let cancelledAt = 0;
    const done = (async (): Promise<HelperEnd> => {
      const before = await problem();
      if (before !== undefined) return { stderr: '', spawnError: `the agent cannot run it: ${before}${await context()}` };
      if (args.some((a) => a.includes('\n'))) return { stderr: '', spawnError: 'an argument holds a newline (the spool passes one per line)' };
      try {
        await mkdir(staging, { recursive: true });
        // the kernel goes into the request: the agent sees no file of this machine but the spool
        const agentArgs = [...args];
        const k = agentArgs.indexOf('--kernel');
        if (k >= 0 && agentArgs[k + 1] !== undefined) {
          await writeFile(join(staging, 'kernel.elf'), await readFile(agentArgs[k + 1]!));
          agentArgs[k + 1] = `${agentDir}/${id}.req/kernel.elf`;
        }
        await writeFile(join(staging, 'args'), agentArgs.map((a) => `${a}\n`).join(''));
        await writeFile(join(staging, 'stdin'), input);
      } catch (e) {
        await rm(staging, { recursive: true, force: true });
        return { stderr: '', spawnError: `cannot write the request: ${(e as Error).message}` };
      }
      // killed while the request was being written: it never reaches the agent
      if (cancelled) {
        await rm(staging, { recursive: true, force: true });
        return { stderr: '', signal: 'SIGKILL' };
      }
      await rename(staging, req);
      let cancelWritten = false;
      const out = new Tail(join(req, 'out'));
      for (let polls = 0; ; polls++) {
        const chunk = await out.read();
        if (chunk) onStdout(chunk);
        if (existsSync(join(req, 'rc'))) break;
        const during = polls % 25 === 0 ? await problem() : undefined;
        if (during !== undefined) return { stderr: '', spawnError: `the agent failed during the run: ${during}${await context()}` };
        if (cancelled && !cancelWritten) {
          // here, not in kill(): the request may not have been in place when kill() came
          await writeFile(join(req, 'cancel'), '').catch(() => {});
          cancelWritten = true;
        }
        if (cancelled && !existsSync(join(req, 'claimed'))) {
          // never claimed: withdraw it so the agent does not start it
          await remove(req, id);
          return { stderr: '', signal: 'SIGKILL' };
        }
        if (cancelled && Date.now() - cancelledAt > cancelGraceMs) {
          // the agent did not confirm the kill: leave the request behind, report the kill anyway
          return { stderr: '', signal: 'SIGKILL' };
        }
        await sleep(pollMs);
      }
      const chunk = await out.read();
      if (chunk) onStdout(chunk);
      const stderr = await readFile(join(req, 'err'), 'utf8').catch(() => '');
      const rc = await readFile(join(req, 'rc'), 'utf8');
      await remove(req, id);
      return agentStatus(rc, stderr);
    })();
    const kill = (): void => {
      if (cancelled) return;
      cancelled = true;
      cancelledAt = Date.now();
    };
    return { kill, done } satisfies HelperRun;
  };
}
