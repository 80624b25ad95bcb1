// The native KVM runner on real KVM: the kvm-tcg backend (runner/backends/kvm-tcg.ts) boots Debian's
// Linux under QEMU TCG with kvm_amd nested=1 and runs the unchanged helper there. These specs are
// the only ones that drive the helper against KVM's own code (KVM_RUN, the nested SVM of kvm_amd,
// KVM_GET/SET_NESTED_STATE) on a machine without SVM. They need the TCG host image (`make test`
// builds it with `svmconf tcghost`, which downloads Debian packages); without it they are skipped
// with the reason printed, never passed.

import assert from 'node:assert/strict';
import type { Case, Kernel } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates } from '../generator/index.ts';
import { kvmTcgBackend, stopTcgHost } from '../runner/backends/kvm-tcg.ts';
import { modelBackend } from '../runner/backends/model.ts';
import type { Backend } from '../runner/backend.ts';
import { runKernels, type ScheduleResults } from '../runner/schedule.ts';
import { okRecords } from './support/records.ts';
import { readyImage, TcgHostImageError } from '../runner/tcghost/image.ts';

/** L1 cases KVM hands to QEMU's CPU untouched, and one L2 case through KVM's nested VMRUN: all equal to the model on kvm-tcg. */
const CASES = ['l1.int3/*', 'l1.intn/*', 'svm.vmmcall/*'];

async function run(kernels: Kernel[], backend: Backend): Promise<{ results: ScheduleResults; notes: string[] }> {
  const info = await backend.probe();
  assert.ok(info.available, `${backend.name} unavailable: ${info.reason}`);
  const notes: string[] = [];
  const results = await runKernels(kernels, [{ backend, info }], {
    jobs: 1,
    idleTimeoutMs: 300_000,
    onProgress: (ev) => {
      if (ev.type === 'boot') notes.push(ev.detail);
    },
  });
  return { results, notes };
}

describe('kvm-tcg: the native runner on KVM inside QEMU TCG', function () {
  this.timeout(900_000);
  let cases: Case[];
  let kernels: Kernel[];
  let plain: Map<string, string>;

  before(async function () {
    try {
      await readyImage();
    } catch (e) {
      if (e instanceof TcgHostImageError) {
        console.log(`      skipped: ${e.message}`);
        this.skip();
      }
      throw e;
    }
    cases = filterCases(expandAll(await loadTemplates()), CASES).filter((c) => c.params.nrips !== 'on');
    kernels = await buildKernels(cases);
  });

  after(async () => {
    await stopTcgHost();
  });

  it('probes KVM in the guest: kvm_amd with nested state, SVM and NPT offered, NRIPS not (QEMU 7.2 TCG has none)', async () => {
    const info = await kvmTcgBackend().probe();
    assert.ok(info.available, info.reason);
    assert.match(info.version ?? '', /kvm_amd; nested state \d+ bytes; in QEMU \d+\.\d+/);
    assert.equal(info.features.svm.present, true);
    assert.equal(info.features.npt.present, true);
    assert.equal(info.features.nrips.present, false);
    assert.equal(info.cpu?.vendor, 'AuthenticAMD');
  });

  it('runs L1 and nested cases with the records the model gives', async () => {
    const kvm = await run(kernels, kvmTcgBackend());
    const model = await run(kernels, modelBackend());
    plain = okRecords(kvm.results, 'kvm-tcg', cases);
    const want = okRecords(model.results, 'model', cases);
    assert.ok(plain.size >= 15, `only ${plain.size} cases`);
    for (const [id, rec] of plain) assert.equal(rec, want.get(id), `${id}: kvm-tcg and the model differ`);
  });

  it('--torture saves and restores the whole vCPU (counted), and the records stay the same', async function () {
    if (plain === undefined) this.skip();
    // every 10th exit and the 5 ms timer: a cycle costs about 40 ms under TCG
    const tortured = await run(kernels, kvmTcgBackend({ torture: true, tortureEvery: 10 }));
    const restores = tortured.notes.map((d) => Number(/torture: (\d+) restores/.exec(d)?.[1] ?? 0));
    assert.equal(restores.length, kernels.length, 'a torture count for every boot');
    assert.ok(restores.every((n) => n > 0), `boots without a restore: ${restores.join(' ')}`);
    const got = okRecords(tortured.results, 'kvm-tcg', cases);
    for (const [id, rec] of plain) assert.equal(got.get(id), rec, `${id}: the record changed under --torture`);
  });
});
