// The console backend end to end: the suite image (make iso) booted by QEMU with SeaBIOS and with
// OVMF (UEFI), behind a console command. Every record must equal the one the same kernel gives
// under QEMU's -kernel (the qemu-tcg backend); a case qemu-tcg cannot run (NRIPS) must be the
// kernel's own SKIP. Then the ways a boot goes wrong: a crash, a hang (TIMEOUT, records kept),
// a reset (the suite starting again), a console command that fails.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Case, CaseResult, Kernel } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates, makeRenderer, ROOT } from '../generator/index.ts';
import { buildIso } from '../generator/iso.ts';
import { defaultCacheDir } from '../generator/kernel.ts';
import { consoleBackend, type SuiteRun } from '../runner/backends/console.ts';
import { qemuTcgBackend } from '../runner/backends/qemu.ts';
import { runKernels } from '../runner/schedule.ts';
import { qemuBiosCmd, qemuUefiCmd, sh } from './support/iso-machines.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'templates');

async function iso(dir: string, name: string, cases: Case[], extraDirs: string[] = []): Promise<{ path: string; kernels: Kernel[] }> {
  const kernels = await buildKernels(cases, { extraDirs });
  const path = await buildIso(kernels, { renderer: await makeRenderer(extraDirs), cacheDir: defaultCacheDir(ROOT), out: join(dir, name), timeout: 0 });
  return { path, kernels };
}

async function runConsole(cmd: string, kernels: Kernel[], idleTimeoutMs = 20_000, bootCmd?: string): Promise<SuiteRun> {
  const b = consoleBackend({ consoleCmd: cmd, ...(bootCmd ? { bootCmd } : {}), startTimeoutMs: 120_000, killGraceMs: 1000 });
  const info = await b.probe();
  assert.ok(info.available, info.reason);
  return b.runSuite(kernels, { idleTimeoutMs });
}

describe('console backend end to end: the suite image on QEMU, BIOS and UEFI', function () {
  this.timeout(600_000);
  let dir: string;
  let suite: { path: string; kernels: Kernel[] };
  let reference: Map<string, Record<string, CaseResult>>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svmconf-console-'));
    suite = await iso(dir, 'suite.iso', expandAll(await loadTemplates()));
    const backend = qemuTcgBackend();
    const info = await backend.probe();
    assert.ok(info.available, `qemu-tcg must be available (make setup): ${info.reason}`);
    reference = await runKernels(suite.kernels, [{ backend, info }], { jobs: 2, idleTimeoutMs: 10_000 });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const sameAsKernelRuns = (run: SuiteRun): void => {
    assert.equal(run.end, 'done', run.detail);
    let compared = 0;
    for (const k of suite.kernels) {
      for (const c of k.cases) {
        const ref = reference.get(c.id)?.['qemu-tcg'];
        const got = run.results.get(c.id);
        assert.ok(ref && got, `a result for ${c.id}`);
        if (ref.status === 'UNSUPPORTED') {
          // qemu-tcg never boots it; in the image it runs and the kernel itself finds the CPU lacking.
          assert.equal(got.status, 'SKIP', `${c.id}: ${got.status} ${got.reason ?? ''}`);
          continue;
        }
        assert.equal(ref.status, 'OK', `${c.id} under -kernel: ${ref.reason ?? ''}`);
        assert.deepEqual({ status: got.status, record: got.record }, { status: ref.status, record: ref.record }, c.id);
        compared++;
      }
    }
    assert.ok(compared > 40, `${compared} records compared`);
  };

  it('BIOS (SeaBIOS, GRUB i386-pc): every record equals the -kernel run', async () => {
    sameAsKernelRuns(await runConsole(qemuBiosCmd(suite.path), suite.kernels));
  });

  it('UEFI (OVMF, GRUB x86_64-efi): every record equals the -kernel run', async () => {
    sameAsKernelRuns(await runConsole(await qemuUefiCmd(suite.path, dir), suite.kernels, 60_000));
  });

  it('keeps the records before a hang, gives the hung case TIMEOUT and kills the console command', async () => {
    const all = expandAll(await loadTemplates([FIXTURES]));
    const img = await iso(dir, 'hang.iso', filterCases(all, ['fixture.crashers/what=ok', 'fixture.crashers/what=fault', 'fixture.crashers/what=hang', 'fixture.crashers/what=ok3']), [FIXTURES]);
    const run = await runConsole(qemuBiosCmd(img.path), img.kernels, 3000);
    assert.equal(run.end, 'timeout', run.detail);
    // ended by the silence after the hang, not by the start timeout or the command ending
    assert.match(run.detail, /^no valid protocol line for 3 s; console command killed$/);
    const r = (id: string) => run.results.get(`fixture.crashers/what=${id}`);
    assert.equal(r('ok')?.status, 'OK');
    assert.equal(r('fault')?.status, 'CRASH');
    assert.equal(r('hang')?.status, 'TIMEOUT');
    assert.equal(r('ok3')?.status, 'ERROR');
  });

  it('sees a reset as the suite starting again: the running case CRASH, what came before kept', async () => {
    const all = expandAll(await loadTemplates([FIXTURES]));
    const img = await iso(dir, 'triple.iso', filterCases(all, ['l1.int3/*', 'fixture.crashers/what=ok', 'fixture.crashers/what=triple', 'fixture.crashers/what=ok2']), [FIXTURES]);
    const run = await runConsole(qemuBiosCmd(img.path, { noReboot: false }), img.kernels, 20_000);
    assert.equal(run.end, 'restarted', run.detail);
    const r = (id: string) => run.results.get(id);
    assert.ok(img.kernels[0]!.cases.every((c) => r(c.id)?.status === 'OK'), 'the INT3 batch before it');
    assert.equal(r('fixture.crashers/what=ok')?.status, 'OK');
    assert.equal(r('fixture.crashers/what=triple')?.status, 'CRASH');
    assert.match(r('fixture.crashers/what=triple')?.reason ?? '', /restarted/);
    assert.equal(r('fixture.crashers/what=ok2')?.status, 'ERROR');
  });

  it('a failing boot command or a console that never shows the suite gives ERROR, never a pass', async () => {
    const ks = suite.kernels.slice(0, 1);
    const failed = await runConsole(`sleep 30`, ks, 5000, 'echo no power >&2; exit 3');
    assert.equal(failed.end, 'boot-failed');
    assert.match(failed.detail, /no power/);
    const silent = await runConsole(`echo ${sh('BMC banner')}; exit 0`, ks, 5000);
    assert.equal(silent.end, 'exited');
    for (const c of ks[0]!.cases) assert.equal(silent.results.get(c.id)?.status, 'ERROR');
  });
});
