// Issue 14 at the command line: a backend named but unavailable (item 8), a log of two boots
// (item 7), and a run stopped by a signal or killed (item 5) — each through `svmconf` itself,
// asserting the exit code, the message and what is left behind.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { CaseResult, Kernel } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates } from '../generator/index.ts';
import { consoleLogBackend, logBoots } from '../runner/backends/console-log.ts';
import { faultyTemplates } from './support/faulty-kernels.ts';
import { crc32Hex } from '../runner/crc32.ts';

const line = (body: string): string => `SVMCONF ${body} ${crc32Hex(`SVMCONF ${body}`)}`;
/** The suite image's output for `kernel` with `records` (one per case), END included unless `end` is false. */
const batch = (kernel: Kernel, records: readonly string[], end = true): string[] => [
  line(`BEGIN ${kernel.id} ${kernel.cases.length} 0`),
  ...records.map((r, i) => line(`CASE ${kernel.cases[i]!.id} OK ${r}`)),
  ...(end ? [line('END')] : []),
];
const boot = (...batches: string[][]): string[] => [`svmconf-suite: begin ${batches.length}`, ...batches.flat(), 'svmconf-suite: done'];

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);

/** `svmconf` with `args`: exit code and output, never throwing on a non-zero exit. */
export async function svmconf(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), ...args], { cwd: ROOT, env, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** A PATH of every program in /usr/bin and /usr/local/bin but `without`. */
async function pathWithout(dir: string, without: readonly string[]): Promise<string> {
  for (const from of ['/usr/bin', '/usr/local/bin']) {
    for (const name of await readdir(from).catch(() => [] as string[])) {
      if (without.includes(name)) continue;
      await symlink(join(from, name), join(dir, name)).catch(() => undefined);
    }
  }
  await readlink(join(dir, 'as')); // the kernels still build
  return dir;
}

describe('trust at the command line (issue 14)', function () {
  this.timeout(300_000);
  let tmp: string;
  before(async () => (tmp = await mkdtemp(join(tmpdir(), 'svmconf-trust-cli-'))));
  after(async () => rm(tmp, { recursive: true, force: true }));

  describe('8: a backend named with --backend that cannot run here', () => {
    let env: NodeJS.ProcessEnv;
    before(async () => {
      await mkdtemp(join(tmp, 'bin-')).then(async (bin) => {
        env = { ...process.env, PATH: await pathWithout(bin, ['qemu-system-x86_64', 'bochs', 'bochs-bin']) };
      });
    });
    const base = ['run', '--filter', 'l1.faults/kind=df_idt_limit?prefix=none', '--jobs', '1'];

    for (const [backend, hint] of [
      ['qemu-tcg', 'backend qemu-tcg is not available: qemu-system-x86_64 not found: apt-get install qemu-system-x86'],
      ['bochs-ryzen', 'backend bochs-ryzen is not available: bochs not found: apt-get install bochs'],
      ['console', 'backend console is not available: not configured: give --console-cmd'],
    ] as const) {
      it(`--backend model,${backend}: exit 2 with the reason and install hint, no stack trace`, async () => {
        const r = await svmconf([...base, '--backend', `model,${backend}`, '--out', join(tmp, `o-${backend}`)], env);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(`svmconf: ${hint}`), r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      });
    }

    it('the same backends found missing by themselves (no --backend) stay a note: exit 0', async () => {
      const r = await svmconf([...base, '--out', join(tmp, 'o-auto')], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /backend qemu-tcg: unavailable — qemu-system-x86_64 not found: apt-get install qemu-system-x86/);
    });
  });

  describe('7: parse-log of a log holding two boots', () => {
    const K = (id: string, n: number): Kernel => ({ id: `${id}#0`, cases: Array.from({ length: n }, (_, i) => ({ id: `${id}/a=${i}` })), cpu: {}, elf: '', bin: '', map: '' }) as unknown as Kernel;
    const A = K('t.a', 2);
    const B = K('t.b', 2);
    const results = async (name: string, lines: string[], kernels: Kernel[]): Promise<Map<string, CaseResult>> => {
      const file = join(tmp, name);
      await writeFile(file, `${lines.join('\r\n')}\r\n`, 'latin1');
      return (await consoleLogBackend(file).runSuite(kernels, { idleTimeoutMs: 1000 })).results;
    };

    it('splits the boots at the loader\'s begin line, and at a BEGIN of a batch the boot already ran', () => {
      assert.deepEqual(logBoots([...boot(batch(A, ['01', '02'])), ...boot(batch(A, ['01', '02']))]).map((b) => b.length), [6, 6]);
      assert.deepEqual(logBoots([...batch(A, ['01', '02']), ...batch(B, ['01', '02']), ...batch(A, ['01', '02'])]).map((b) => b.length), [8, 4]);
    });

    it('the second boot\'s batches are taken, never dropped', async () => {
      const r = await results('ab.log', [...boot(batch(A, ['01', '02'])), ...boot(batch(B, ['03', '04']))], [A, B]);
      assert.deepEqual([...r.values()].map((x) => `${x.status} ${x.record}`), ['OK 01', 'OK 02', 'OK 03', 'OK 04']);
    });

    it('a case two boots agree on keeps its result; one they disagree on is ERROR naming both', async () => {
      const r = await results('aa.log', [...boot(batch(A, ['01', '02'])), ...boot(batch(A, ['01', 'ff']))], [A]);
      assert.deepEqual(r.get('t.a/a=0'), { status: 'OK', record: '01' });
      assert.deepEqual(r.get('t.a/a=1'), { status: 'ERROR', reason: "the log's boots disagree: boot 1: OK 02; boot 2: OK ff" });
    });

    it('a first boot that stopped mid-batch is not forgotten behind a complete second one', async () => {
      const r = await results('crash.log', [...boot(batch(A, ['01'], false)).slice(0, -1), ...boot(batch(A, ['01', '02']))], [A]);
      assert.deepEqual(r.get('t.a/a=0'), { status: 'OK', record: '01' });
      assert.equal(r.get('t.a/a=1')?.status, 'ERROR');
      assert.match(r.get('t.a/a=1')?.reason ?? '', /^the log's boots disagree: boot 1: CRASH \(the machine restarted .*; boot 2: OK 02$/);
    });

    it('svmconf parse-log: exit 0 for two boots that agree, 2 when they disagree, every case in results.json', async () => {
      const cases = filterCases(expandAll(await loadTemplates([])), ['l1.int3/*']);
      const [k] = await buildKernels(cases);
      // records of the layout's length (an OK record of another length is ERROR on its own)
      const recs = k!.cases.map((c, i) => `0${i}`.repeat(c.template.recordSize));
      const other = 'ee'.repeat(k!.cases[k!.cases.length - 1]!.template.recordSize);
      for (const [name, second, code] of [['agree', recs, 0], ['disagree', [...recs.slice(0, -1), other], 2]] as const) {
        const file = join(tmp, `${name}.log`);
        await writeFile(file, [...boot(batch(k!, recs)), ...boot(batch(k!, second))].join('\n') + '\n');
        const out = join(tmp, `pl-${name}`);
        const r = await svmconf(['parse-log', file, '--filter', 'l1.int3/*', '--no-model', '--out', out]);
        assert.equal(r.code, code, `${name}: ${r.stderr}`);
        const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { cases: Array<{ id: string; results: Record<string, CaseResult> }> };
        assert.equal(res.cases.length, k!.cases.length);
        const lastId = k!.cases[k!.cases.length - 1]!.id;
        assert.equal(res.cases.find((c) => c.id === lastId)?.results.console?.status, code === 0 ? 'OK' : 'ERROR', name);
      }
    });
  });

  describe('5: a run stopped by SIGTERM, SIGINT or kill -9 leaves no process behind', () => {
    /** pid → [ppid, comm, state] of every process now. */
    const procs = (): Map<number, [number, string, string]> => {
      const m = new Map<number, [number, string, string]>();
      for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
          const close = stat.lastIndexOf(')');
          const [state, ppid] = stat.slice(close + 2).split(' ');
          m.set(Number(d), [Number(ppid), stat.slice(stat.indexOf('(') + 1, close), state!]);
        } catch {
          // gone meanwhile
        }
      }
      return m;
    };
    const descendants = (root: number): Map<number, string> => {
      const all = procs();
      const out = new Map<number, string>();
      let grew = true;
      while (grew) {
        grew = false;
        for (const [pid, [ppid, comm]] of all) {
          if (!out.has(pid) && (ppid === root || out.has(ppid))) {
            out.set(pid, comm);
            grew = true;
          }
        }
      }
      return out;
    };
    const alive = (pid: number): boolean => {
      const p = procs().get(pid);
      return p !== undefined && p[2] !== 'Z';
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    let templates: string;
    let vmmNames: string[];
    before(async () => {
      templates = await faultyTemplates(['trust.hang']);
      // the backends that boot a VMM process here
      const r = await svmconf(['backends']);
      vmmNames = ['qemu-tcg', 'bochs-ryzen', 'kvm'].filter((b) => new RegExp(`^${b}: available`, 'm').test(r.stdout));
      assert.ok(vmmNames.includes('qemu-tcg'), r.stdout);
    });

    /** Start `svmconf run` on the hanging kernel; resolve once every backend's VMM process runs. */
    const start = async (name: string) => {
      const tmpd = await mkdtemp(join(tmp, `run-${name}-`));
      const out = join(tmpd, 'out');
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), 'run', '--templates', templates, '--filter', 'trust.hang/*',
        '--backend', ['model', ...vmmNames].join(','), '--timeout', '120', '--jobs', '8', '--out', out], {
        cwd: ROOT, env: { ...process.env, TMPDIR: tmpd }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.resume();
      const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
      const want = { 'qemu-tcg': /^qemu-system/, 'bochs-ryzen': /^bochs/, kvm: /^svmconf-kvm/ } as Record<string, RegExp>;
      for (let t = 0; t < 600; t++) {
        const comms = [...descendants(child.pid!).values()];
        if (vmmNames.every((b) => comms.some((c) => want[b]!.test(c)))) break;
        await sleep(100);
      }
      await sleep(300);
      const kids = descendants(child.pid!);
      for (const b of vmmNames) assert.ok([...kids.values()].some((c) => want[b]!.test(c)), `${b} started: ${[...kids.values()]} ${stderr}`);
      return { child, exited, kids, tmpd, out, stderr: () => stderr };
    };

    for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
      it(`${sig}: exit ${code}, every VMM gone, the temp dirs removed, results.json marked interrupted`, async () => {
        const r = await start(sig);
        const t0 = Date.now();
        r.child.kill(sig);
        const end = await r.exited;
        assert.equal(end.code, code, r.stderr());
        assert.ok(Date.now() - t0 < 10_000, 'stopped within a few seconds');
        for (const [pid, comm] of r.kids) assert.ok(!alive(pid), `${comm} (${pid}) survived ${sig}`);
        assert.deepEqual(readdirSync(r.tmpd).filter((f) => f.startsWith('svmconf-')), [], 'temp dirs (Bochs com1.out) removed');
        const res = JSON.parse(readFileSync(join(r.out, 'results.json'), 'utf8')) as { interrupted?: string; cases: Array<{ results: Record<string, { status: string; reason?: string }> }> };
        assert.match(res.interrupted ?? '', new RegExp(`^run interrupted by ${sig}: 0 of \\d+ results finished$`));
        for (const b of vmmNames) assert.equal(res.cases[0]!.results[b]!.reason, `not run: run interrupted by ${sig}`);
        assert.match(r.stderr(), new RegExp(`svmconf: run interrupted by ${sig}`));
        assert.ok(existsSync(join(r.out, 'matrix.md')));
      });
    }

    it('kill -9 of the run: every VMM notices and dies within a few seconds', async () => {
      const r = await start('kill9');
      r.child.kill('SIGKILL');
      await r.exited;
      const vmms = [...r.kids].filter(([, comm]) => /^(qemu-system|bochs|svmconf-kvm|setpriv|unshare)/.test(comm));
      assert.ok(vmms.length >= vmmNames.length);
      for (let t = 0; t < 50 && vmms.some(([pid]) => alive(pid)); t++) await sleep(100);
      for (const [pid, comm] of vmms) assert.ok(!alive(pid), `${comm} (${pid}) outlived kill -9 of the run`);
    });
  });
});

