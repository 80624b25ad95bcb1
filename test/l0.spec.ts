// The virtual L0 (model/l0/) and the mutants (model/mutants.ts, suite/mutants.ts): the correct L0
// must change no record of any case under any profile (while taking exits on cold pages), and every
// mutant must be killed by some case of the suite — the check `svmconf mutants` makes, run here in CI.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { DEFAULT_PROFILE, PROFILES } from '../model/profile.ts';
import { MUTANTS, type MutantName } from '../model/mutants.ts';
import { allMutantNames, formatKillTable, NO_MUTANT, runMutants, survivors } from '../suite/mutants.ts';
import { modelBackend } from '../runner/backends/model.ts';
import type { Kernel } from '../core/types.ts';
import { Cpu, type CpuHooks } from '../model/cpu/cpu.ts';
import { SEG } from '../model/cpu/state.ts';
import { PhysicalMemory } from '../model/memory.ts';
import { handlerFor } from '../model/isa/index.ts';
import { completeSoftEvent, type L0Context, type SoftEventState } from '../model/l0/reinject.ts';
import { EVENT_TYPE, parseEventInfo, makeEventInj } from '../arch/svm.ts';
import { setCodeMode } from './support/cpu-mode.ts';

describe('virtual L0 and mutants', function () {
  this.timeout(600_000);
  let kernels: Kernel[];

  before(async () => {
    kernels = await buildKernels(expandAll(await loadTemplates()));
  });

  // the default profile's transparency is checked with the mutants below; amd-10h has no NRIPS (the
  // L0's other path); CI runs these two, `svmconf mutants --profile` the others
  for (const profile of PROFILES.filter((p) => p.name === 'amd-10h')) {
    it(`${profile.name}: the correct L0 is transparent (every record equals the plain model's)`, async () => {
      const r = await runMutants(kernels, { profile, mutants: [] });
      const row = r.rows.find((x) => x.mutant === NO_MUTANT)!;
      assert.equal(row.run, kernels.reduce((n, k) => n + k.cases.length, 0));
      assert.deepEqual(row.killedBy, [], 'records the L0 changed');
    });
  }

  it('takes exits on cold pages and re-injects, and none once L2 has touched the pages (l0.l2_softint)', async () => {
    const cases = filterCases(expandAll(await loadTemplates()), ['l0.l2_softint/*nrips=on']);
    const backend = modelBackend({ l0: true });
    const exits = new Map<string, string>();
    for (const c of cases) {
      const [k] = await buildKernels([c]);
      const boot = await backend.boot({ kernel: k!, start: 0, cpu: k!.cpu, idleTimeoutMs: 30_000 });
      assert.equal(boot.end, 'exited', `${c.id}: ${boot.detail}`);
      exits.set(c.params.temp!, /L0: (\d+) exit/.exec(boot.detail)?.[1] ?? '?');
      if (c.params.temp === 'cold') assert.match(boot.detail, /L0: [1-9]\d* exit\(s\) during delivery, [1-9]\d* re-injected, 0 retried/, c.id);
      else assert.match(boot.detail, /L0: 0 exit\(s\)/, c.id);
    }
    assert.deepEqual([...exits.keys()].sort(), ['cold', 'warm']);
  });

  it(`${DEFAULT_PROFILE.name}: the correct L0 is transparent and every mutant is killed by some case (svmconf mutants --first-kill)`, async () => {
    const r = await runMutants(kernels, { profile: DEFAULT_PROFILE, mutants: allMutantNames(), firstKill: true, jobs: 2 });
    const { survived, opaque } = survivors(r);
    assert.deepEqual(survived, [], `\n${formatKillTable(r)}`);
    assert.equal(opaque, false, `\n${formatKillTable(r)}`);
    assert.equal(r.rows.length, MUTANTS.length + 1);
    for (const row of r.rows) for (const k of row.killedBy) assert.ok(k.why.length > 0, `${row.mutant} ${k.id} says why`);
  });

  it('svmconf mutants: the kill table, exit 0 when every mutant dies, 1 when one survives, 3 for an unknown name', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), 'mutants', '--jobs', '1', ...args], { encoding: 'utf8' });
    const killed = cli('--filter', 'svm.inject.invalid/*', '--mutant', 'exit-code-low32');
    assert.equal(killed.status, 0, killed.stderr);
    // 17 of the 20 cases kill it: the 3 open ones (#OF into 64-bit, #CP, #VC) are compared on no bit
    assert.match(killed.stdout, /exit-code-low32\s+svm\s+killed\s+svm\.inject\.invalid\/type=1,vec=0x20\s+17\/20/);
    assert.match(killed.stdout, /\(none: correct L0\)\s+—\s+transparent/);
    const survived = cli('--filter', 'svm.inject.invalid/*', '--mutant', 'icebp-trap');
    assert.equal(survived.status, 1);
    assert.match(survived.stdout, /icebp-trap\s+svm\s+SURVIVED/);
    assert.match(survived.stdout, /surviving: icebp-trap/);
    const unknown = cli('--mutant', 'no-such-bug');
    assert.equal(unknown.status, 3);
    assert.match(unknown.stderr, /unknown mutant no-such-bug/);
  });

  it('the catalogue names each mutant once, with its bug, source and place', () => {
    const names = MUTANTS.map((m) => m.name);
    assert.equal(new Set(names).size, names.length);
    for (const m of MUTANTS) {
      assert.ok(m.bug && m.source && m.bites, m.name);
      assert.match(m.bites, /^model\/(l0|svm)\//, m.name);
      assert.ok(m.bites.startsWith(`model/${m.layer}/`), `${m.name}: layer ${m.layer} but bites ${m.bites}`);
    }
  });
});

// ---- the soft-event rules of model/l0/reinject.ts, by hand (KVM's svm_complete_soft_interrupt) ----


describe('virtual L0: completing an interrupted soft event (model/l0/reinject.ts)', () => {
  const hooks: CpuHooks = { translate: (_c, linear) => Number(linear), handlerFor, portIn: () => 0, portOut: () => {} };
  function cpuAt(bits: 32 | 64, rip: bigint, csBase = 0n): Cpu {
    const cpu = new Cpu(new PhysicalMemory(1 << 16), hooks);
    setCodeMode(cpu, bits);
    cpu.seg[SEG.CS]!.base = csBase;
    cpu.rip = rip;
    return cpu;
  }
  const l0 = (nrips: boolean, mutants: MutantName[] = []): L0Context => ({
    nrips, soft: undefined, mutant: (n) => mutants.includes(n), count: () => {},
  });
  const intn = parseEventInfo(makeEventInj({ vector: 0x80, type: EVENT_TYPE.SOFT_INT }));
  const gp = parseEventInfo(makeEventInj({ vector: 13, type: EVENT_TYPE.EXCEPTION, ev: true, errorCode: 0 }));
  const soft: SoftEventState = { oldRip: 0x100n, nextRip: 0x105n, csBase: 0x10000n };

  it('with NRIPS: the remembered next RIP when the linear RIP (CS base included) is the event\'s', () => {
    assert.equal(completeSoftEvent(cpuAt(32, 0x100n, 0x10000n), l0(true), intn, soft), 0x105n);
    assert.equal(completeSoftEvent(cpuAt(32, 0x100n, 0x20000n), l0(true), intn, soft), undefined, 'another linear address');
    assert.equal(completeSoftEvent(cpuAt(32, 0x100n, 0x10000n), l0(true), gp, soft), undefined, 'not a soft event');
    assert.equal(completeSoftEvent(cpuAt(32, 0x100n, 0x10000n), l0(true), intn, undefined), undefined, 'nothing remembered');
  });

  it('ignore-cs-base: the same RIP is not recognised once CS has a base; in 64-bit mode the base never counts', () => {
    assert.equal(completeSoftEvent(cpuAt(32, 0x100n, 0x10000n), l0(true, ['ignore-cs-base']), intn, soft), undefined);
    assert.equal(completeSoftEvent(cpuAt(64, 0x100n, 0x10000n), l0(true, ['ignore-cs-base']), intn, soft), 0x105n);
    assert.equal(completeSoftEvent(cpuAt(64, 0x100n), l0(true), intn, soft), 0x105n);
  });

  it('without NRIPS: RIP advanced for the event is unwound, also when the reported event is one its delivery raised', () => {
    const a = cpuAt(32, 0x105n, 0x10000n);
    assert.equal(completeSoftEvent(a, l0(false), intn, soft), undefined);
    assert.equal(a.rip, 0x100n);
    const b = cpuAt(32, 0x105n, 0x10000n);
    completeSoftEvent(b, l0(false), gp, soft); // INT n → #GP: the #GP is reported, RIP still unwound
    assert.equal(b.rip, 0x100n);
    const c = cpuAt(32, 0x107n, 0x10000n);
    completeSoftEvent(c, l0(false), intn, soft);
    assert.equal(c.rip, 0x107n, 'another RIP is left alone');
  });
});
