// The model backend hides features from CPUID the way a VMM hides them from its guest, and the
// behaviour switches follow CPUID (APM vol. 2 15.4: NRIPS is CPUID 8000_000A EDX bit 3).

import assert from 'node:assert/strict';
import { AMD_19H } from '../model/profiles/index.ts';
import { hardwareCpuid, profileFeatures, svmSwitches, withoutFeatures } from '../model/profile.ts';
import { bootProfile, modelBackend } from '../runner/backends/model.ts';

describe('model backend: feature hiding', () => {
  it('withoutFeatures clears only the CPUID bit of the hidden feature', () => {
    const p = withoutFeatures(AMD_19H, ['nrips']);
    assert.equal(p.name, 'amd-19h-nrips');
    const before = hardwareCpuid(AMD_19H, 0x8000_000a, 0).edx;
    const after = hardwareCpuid(p, 0x8000_000a, 0).edx;
    assert.equal(before & ~after, 1 << 3);
    assert.deepEqual(profileFeatures(p), { svm: true, npt: true, nrips: false });
    assert.equal(svmSwitches(p).nrips, false);
    assert.equal(svmSwitches(AMD_19H).nrips, true, 'the original profile is untouched');
  });

  it('a boot that needs NRIPS absent runs under the profile without it; other boots under the profile itself', () => {
    assert.equal(bootProfile(AMD_19H, { nrips: false }).name, 'amd-19h-nrips');
    assert.equal(bootProfile(AMD_19H, { nrips: true }), AMD_19H);
    assert.equal(bootProfile(AMD_19H, {}), AMD_19H);
  });

  it('probe offers both presence and absence of a feature the profile has', async () => {
    const info = await modelBackend({ profile: AMD_19H }).probe();
    assert.equal(info.features.nrips.present, true);
    assert.equal(info.features.nrips.absent, true);
  });
});
