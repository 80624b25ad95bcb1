// Issue 14, items 1-4: kernels that break the serial protocol the way a hypervisor bug would make
// them (test/support/faulty-kernels.ts), run on every backend that can run here (model, qemu-tcg,
// bochs-ryzen, kvm where /dev/kvm and the helper exist) and fed to the console backend as crafted
// logs. The rules asserted are docs/protocol.md "What the runner makes of it" and "Limits".

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { CaseResult, Kernel } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates } from '../generator/index.ts';
import type { Backend } from '../runner/backend.ts';
import { bochsBackend } from '../runner/backends/bochs.ts';
import { consoleLogBackend } from '../runner/backends/console-log.ts';
import { kvmNativeBackend } from '../runner/backends/kvm.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { qemuTcgBackend } from '../runner/backends/qemu.ts';
import { crc32Hex } from '../runner/crc32.ts';
import { bootLimitMs } from '../runner/protocol.ts';
import { runKernels, type ProgressEvent } from '../runner/schedule.ts';
import { faultyTemplates, GOOD_RECORD } from './support/faulty-kernels.ts';

const ROOT = resolve(import.meta.dirname, '..');
const IDLE_MS = 3000;
const FAULTS = ['trust.forge', 'trust.allforge', 'trust.noend', 'trust.noendexit', 'trust.flood', 'trust.floodraw', 'trust.vflood', 'trust.badcrc'];

const run = promisify(execFile);
/** `svmconf` with `args`: its exit code and output (never throws on a non-zero exit). */
async function svmconf(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const line = (body: string): string => `SVMCONF ${body} ${crc32Hex(`SVMCONF ${body}`)}`;

describe('trust: faulty kernels on every backend (issue 14, items 1-4)', function () {
  this.timeout(300_000);
  let dir: string;
  let kernels: Kernel[];
  /** backend name → case id → result */
  const results = new Map<string, Map<string, CaseResult>>();
  /** backend name → the boots it made */
  const boots = new Map<string, Array<Extract<ProgressEvent, { type: 'boot' }>>>();
  const skipped: string[] = [];

  before(async function () {
    dir = await faultyTemplates(FAULTS);
    const cases = filterCases(expandAll(await loadTemplates([dir])), FAULTS.map((f) => `${f}/*`));
    kernels = await buildKernels(cases, { extraDirs: [dir] });
    const candidates: Backend[] = [modelBackend(), qemuTcgBackend(), bochsBackend({ flavour: 'ryzen' }), kvmNativeBackend()];
    await Promise.all(candidates.map(async (backend) => {
      const info = await backend.probe();
      if (!info.available) {
        skipped.push(`${backend.name}: ${info.reason}`);
        return;
      }
      const evs: Array<Extract<ProgressEvent, { type: 'boot' }>> = [];
      const r = await runKernels(kernels, [{ backend, info }], {
        jobs: 1, idleTimeoutMs: IDLE_MS, onProgress: (ev) => ev.type === 'boot' && evs.push(ev),
      });
      const byCase = new Map<string, CaseResult>();
      for (const [id, row] of r) byCase.set(id, row[backend.name]!);
      results.set(backend.name, byCase);
      boots.set(backend.name, evs);
    }));
    if (skipped.length) console.log(`      (not run here: ${skipped.join('; ')})`);
    assert.ok(results.has('model'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const each = (fn: (r: (id: string) => CaseResult, backend: string) => void): void => {
    for (const [backend, byCase] of results) {
      fn((id) => {
        const r = byCase.get(id);
        assert.ok(r, `${backend}: no result for ${id}`);
        return r;
      }, backend);
    }
  };
  const is = (r: CaseResult, status: string, reason: RegExp | string, backend: string): void => {
    assert.equal(r.status, status, `${backend}: ${JSON.stringify(r)}`);
    if (typeof reason === 'string') assert.equal(r.reason, reason, backend);
    else assert.match(r.reason ?? '', reason, backend);
  };

  it('1: a line for a later case is never credited to it; the expected case is ERROR and the skipped one runs in a new boot', () => {
    each((r, b) => {
      is(r('trust.forge/what=forge'), 'ERROR', 'protocol: got line for trust.forge/what=victim while expecting trust.forge/what=forge', b);
      // the forged record was dead0000dead0000: this one comes from victim's own body
      assert.deepEqual([r('trust.forge/what=victim').status, r('trust.forge/what=victim').record], ['OK', GOOD_RECORD], b);
      assert.equal(r('trust.forge/what=after').status, 'OK', b);
      const forgeBoots = boots.get(b)!.filter((e) => e.kernel === 'trust.forge#0').map((e) => e.start);
      assert.deepEqual(forgeBoots, [0, 1], `${b}: rebooted at the case after the ERROR`);
    });
  });

  it('1: a batch forged entirely (each case prints the next one\'s line) is ERROR throughout', () => {
    each((r, b) => {
      for (const [me, next] of [['a', 'b'], ['b', 'c'], ['c', 'a']]) {
        is(r(`trust.allforge/what=${me}`), 'ERROR', `protocol: got line for trust.allforge/what=${next} while expecting trust.allforge/what=${me}`, b);
      }
    });
  });

  it('2: a last case that prints its line and then hangs is TIMEOUT; one that leaves without END is ERROR', () => {
    each((r, b) => {
      assert.equal(r('trust.noend/what=ok').status, 'OK', b);
      is(r('trust.noend/what=last'), 'TIMEOUT', /^its CASE line came, then no END: no valid protocol line for 3 s/, b);
      assert.equal(r('trust.noend/what=last').record, undefined, `${b}: the unconfirmed record is not kept`);
      is(r('trust.noendexit/what=last'), 'ERROR', /^its CASE line came, then no END: the VM exited/, b);
    });
  });

  it('3: a kernel that prints for ever (noise lines, no newline, its own valid line) is stopped; the rest runs in a new boot', () => {
    each((r, b) => {
      is(r('trust.flood/what=flood'), 'TIMEOUT', /no valid protocol line for 3 s|printed more than \d+ bytes/, b);
      is(r('trust.floodraw/what=flood'), 'TIMEOUT', /^a line longer than 1024 bytes while expecting trust\.floodraw\/what=flood; /, b);
      is(r('trust.vflood/what=flood'), 'ERROR', 'protocol: got a second line for trust.vflood/what=flood while expecting trust.vflood/what=after', b);
      for (const t of ['flood', 'floodraw', 'vflood']) {
        assert.deepEqual([r(`trust.${t}/what=ok`).status, r(`trust.${t}/what=after`).status], ['OK', 'OK'], `${b} ${t}`);
      }
      // every boot ended within its documented limit (and the flooding ones long before it)
      for (const e of boots.get(b)!) {
        const k = kernels.find((x) => x.id === e.kernel)!;
        assert.ok(e.seconds * 1000 < bootLimitMs(k.cases.length - e.start, IDLE_MS) + 2000, `${b} ${e.kernel}: ${e.seconds} s`);
      }
    });
  });

  it('4: a case whose line has a bad CRC and then hangs is the ERROR; the case after it runs', () => {
    each((r, b) => {
      is(r('trust.badcrc/what=bad'), 'ERROR', /^protocol: got a line for trust\.badcrc\/what=bad with a bad CRC .* while expecting trust\.badcrc\/what=bad$/, b);
      assert.deepEqual([r('trust.badcrc/what=after').status, r('trust.badcrc/what=after').record], ['OK', GOOD_RECORD], b);
    });
  });

  it('exit code 2 from `svmconf run` for each fault (model), with the message in results.json', async () => {
    const out = await mkdtemp(join(tmpdir(), 'svmconf-trust-out-'));
    try {
      for (const [fault, id, status] of [
        ['trust.allforge', 'trust.allforge/what=a', 'ERROR'],
        ['trust.noend', 'trust.noend/what=last', 'TIMEOUT'],
        ['trust.badcrc', 'trust.badcrc/what=bad', 'ERROR'],
      ] as const) {
        const r = await svmconf(['run', '--templates', dir, '--filter', `${fault}/*`, '--backend', 'model', '--timeout', '2', '--jobs', '1', '--out', out]);
        assert.equal(r.code, 2, `${fault}: ${r.stderr}`);
        const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { cases: Array<{ id: string; results: Record<string, CaseResult> }> };
        assert.equal(res.cases.find((c) => c.id === id)?.results.model?.status, status, fault);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  describe('the console backend over crafted logs', () => {
    const logRun = async (name: string, batch: string[], ids: string[]): Promise<Map<string, CaseResult>> => {
      const file = join(dir, name);
      await writeFile(file, ['svmconf-suite: begin 1', ...batch, ''].join('\r\n'), 'latin1');
      const kernel = { id: 'trust.t#0', cases: ids.map((id) => ({ id })), cpu: {}, elf: '', bin: '', map: '' } as unknown as Kernel;
      return (await consoleLogBackend(file).runSuite([kernel], { idleTimeoutMs: 1000 })).results;
    };
    const A = 'trust.t/what=a', B = 'trust.t/what=b', C = 'trust.t/what=c';
    const begin = line('BEGIN trust.t#0 3 0');

    it('1: a forged line for a later case: the expected case ERROR, the rest not run, never OK', async () => {
      const r = await logRun('forge.log', [begin, line(`CASE ${B} OK 00`), line(`CASE ${A} OK 01`), line(`CASE ${B} OK 02`), line(`CASE ${C} OK 03`), line('END'), 'svmconf-suite: done'], [A, B, C]);
      assert.deepEqual(r.get(A), { status: 'ERROR', reason: `protocol: got line for ${B} while expecting ${A}` });
      for (const id of [B, C]) assert.match(r.get(id)!.reason ?? '', /^not run: the batch's output was not trusted/, id);
    });

    it('2: every case line but no END: the last case is not OK', async () => {
      const r = await logRun('noend.log', [begin, line(`CASE ${A} OK 01`), line(`CASE ${B} OK 02`), line(`CASE ${C} OK 03`), 'svmconf-suite: done'], [A, B, C]);
      assert.equal(r.get(B)?.status, 'OK');
      assert.equal(r.get(C)?.status, 'CRASH');
      assert.match(r.get(C)?.reason ?? '', /^its CASE line came, then no END: /);
    });

    it('3: a line longer than the protocol allows stops the batch there', async () => {
      const r = await logRun('flood.log', [begin, line(`CASE ${A} OK 01`), 'x'.repeat(5000), line(`CASE ${B} OK 02`)], [A, B, C]);
      assert.equal(r.get(A)?.status, 'OK');
      assert.match(r.get(B)?.reason ?? '', /^a line longer than 1024 bytes while expecting trust\.t\/what=b; /);
      assert.notEqual(r.get(B)?.status, 'OK');
    });

    it('4: a bad CRC: that case ERROR, nothing after it credited', async () => {
      const bad = line(`CASE ${B} OK 02`).replace(/ [0-9a-f]{8}$/, ' 00000000');
      const r = await logRun('badcrc.log', [begin, line(`CASE ${A} OK 01`), bad, line(`CASE ${C} OK 03`), line('END'), 'svmconf-suite: done'], [A, B, C]);
      assert.match(r.get(B)?.reason ?? '', /bad CRC/);
      assert.equal(r.get(B)?.status, 'ERROR');
      assert.equal(r.get(C)?.status, 'ERROR');
    });
  });
});
