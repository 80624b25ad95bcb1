// The Bochs columns of the pinned peers (runner/backends/bochs.ts bochsPeerBackends, docs/backends/bochs.md
// "The 3.1 columns"): their names and what their probe says without a root, then, where
// build/peers/sid holds bochs@3.1, a few cases on each 3.1 flavour compared with the model under
// the flavour's profile and 3.1's CPUID. Skipped, saying why, when the root is absent
// (`svmconf peers --only bochs@3.1` builds it).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { BOCHS_FLAVOURS, BOCHS_SVM_EDX, bochsPeerBackends, type BochsBackend } from '../runner/backends/bochs.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { loadPins } from '../runner/peers/pins.ts';
import { runKernels, type ScheduleResults } from '../runner/schedule.ts';
import { compareCase } from '../report/compare.ts';
import { loadDeviations } from '../report/deviations.ts';
import { findProfile, withSvmEdx } from '../model/profile.ts';
import type { BackendInfo, Case, CaseOutcome } from '../core/types.ts';

const PEER = 'bochs@3.1';

describe('runner/backends/bochs: columns of the pinned Bochs peers', () => {
  it('one column per flavour for each bochs pin, named <flavour>@<version>, in pin order', () => {
    const names = bochsPeerBackends().map((b) => b.name);
    const pins = loadPins().peers.filter((p) => p.kind === 'bochs');
    assert.deepEqual(names, pins.flatMap((p) => [`bochs-ryzen@${p.short}`, `bochs-phenom@${p.short}`]));
    assert.ok(names.includes('bochs-ryzen@3.1') && names.includes('bochs-phenom@3.1'));
  });

  it('compares each 3.1 flavour with the SVM features 3.1 reports (ryzen adds the pause filter threshold)', () => {
    const byName = new Map(bochsPeerBackends().map((b) => [b.name, b] as const));
    assert.equal(byName.get('bochs-ryzen@3.1')!.referenceSvmEdx, 0x144f);
    assert.equal(byName.get('bochs-phenom@3.1')!.referenceSvmEdx, 0x7);
    assert.equal(byName.get('bochs-ryzen@3.1')!.referenceProfile, 'amd-17h');
  });

  it('without a root the probe says the peer is not installed and how to install it, family and peer kept', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'svmconf-no-peers-'));
    try {
      const [ryzen] = bochsPeerBackends({ dirs: { peers: empty } });
      const info = await ryzen!.probe();
      assert.equal(info.name, 'bochs-ryzen@3.1');
      assert.equal(info.available, false);
      assert.match(info.reason, /^bochs@3\.1 is not installed: no sid root; run svmconf peers \(or make peers\)$/);
      assert.equal(info.family, 'bochs-ryzen');
      assert.equal(info.peer, PEER);
      assert.equal(info.features.svm.present, false);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('end to end on Bochs 3.1 (the pinned peer)', function () {
  this.timeout(300_000);
  // 6 cases, 3 kernels a flavour: L1 INT3, VMMCALL (one NRIPS setting per flavour), and the #BR
  // injected into a 64-bit guest that 3.1 refuses as the model does
  const ids = ['l1.int3/enc=cc,prefix=none', 'l1.int3/enc=cc,prefix=rex', 'l1.int3/enc=cd03,prefix=ds', 'svm.vmmcall/*', 'svm.inject.invalid/type=3,vec=0x05'];
  const runs = new Map<string, { backend: BochsBackend; info: BackendInfo; bochs: ScheduleResults; model: ScheduleResults }>();
  let cases: Case[];

  before(async function () {
    const backends = bochsPeerBackends().filter((b) => b.name.endsWith('@3.1'));
    const infos = await Promise.all(backends.map((b) => b.probe()));
    const missing = infos.find((i) => !i.available);
    if (missing) {
      console.log(`      skipped: ${missing.name}: ${missing.reason}`);
      this.skip();
    }
    cases = filterCases(expandAll(await loadTemplates()), ids);
    assert.equal(cases.length, 6);
    const kernels = await buildKernels(cases);
    for (const [i, backend] of backends.entries()) {
      const info = infos[i]!;
      const model = modelBackend({ profile: withSvmEdx(findProfile(backend.referenceProfile)!, backend.referenceSvmEdx), name: 'ref' });
      const bochs = await runKernels(kernels, [{ backend, info }], { jobs: 2, idleTimeoutMs: 20_000 });
      const ref = await runKernels(kernels, [{ backend: model, info: await model.probe() }], { jobs: 2, idleTimeoutMs: 10_000 });
      runs.set(backend.name, { backend, info, bochs, model: ref });
    }
  });

  it('the columns state version, family, peer and the exact packages of the root', () => {
    for (const { info, backend } of runs.values()) {
      assert.equal(info.version, 'Bochs 3.1');
      assert.equal(info.family, backend.name.replace('@3.1', ''));
      assert.equal(info.peer, PEER);
      assert.equal(info.packages?.bochs, '3.1+dfsg-1');
    }
  });

  for (const flavour of ['ryzen', 'phenom'] as const) {
    const name = `${BOCHS_FLAVOURS[flavour].name}@3.1`;
    it(`${name}: records equal the model's under ${BOCHS_FLAVOURS[flavour].referenceProfile} where 3.1 agrees; the #BR injection is refused as the model refuses it`, async () => {
      const run = runs.get(name)!;
      const registry = await loadDeviations(join(ROOT, 'expected', 'deviations.yaml'));
      const verdicts: Record<string, string> = {};
      for (const c of cases) {
        const mine = run.bochs.get(c.id)![name]!;
        if (mine.status === 'UNSUPPORTED') {
          assert.equal(c.params.nrips, flavour === 'ryzen' ? 'off' : 'on', c.id);
          continue;
        }
        assert.equal(mine.status, 'OK', `${c.id}: ${mine.status} ${mine.reason ?? ''}`);
        // the kernel's own CPUID line says what BOCHS_SVM_EDX says
        assert.equal(parseInt(mine.cpuidSvmEdx ?? '', 16), BOCHS_SVM_EDX['3.1']![flavour], c.id);
        const ref = run.model.get(c.id)!.ref!;
        const outcome: CaseOutcome = { id: c.id, template: c.template.id, params: c.params, results: { ref, [name]: mine } };
        const cmp = compareCase(outcome, c.template.record, {
          preference: ['ref'], deviations: registry, versions: { [name]: run.info.version }, families: { [name]: run.info.family! },
        });
        verdicts[c.id] = cmp.verdict === 'known' ? `known ${[...new Set(cmp.diffs.flatMap((d) => d.known.map((k) => k.id)))].join(',')}` : cmp.verdict;
        if (c.template.id !== 'svm.inject.invalid') assert.equal(mine.record, ref.record, c.id);
        if (c.id.endsWith('vec=0x05')) {
          // exit_code (VMEXIT_INVALID) and hits equal the model's; only the EVENTINJ left behind differs
          assert.equal(mine.record!.slice(0, 16), ref.record!.slice(0, 16));
          assert.equal(mine.record!.slice(-16), ref.record!.slice(-16));
        }
      }
      const suffix = flavour === 'phenom' ? '-phenom' : '';
      assert.deepEqual(verdicts, {
        'l1.int3/enc=cc,prefix=none': 'agree',
        'l1.int3/enc=cc,prefix=rex': 'agree',
        'l1.int3/enc=cd03,prefix=ds': 'agree',
        [`svm.vmmcall/nrips=${flavour === 'ryzen' ? 'on' : 'off'}`]: 'agree',
        'svm.inject.invalid/type=3,vec=0x05': `known bochs-vmexit-eventinj-only-v-cleared${suffix}`,
      });
    });
  }
});
