// CPU profiles: each family's CPUID as its sources give it (values derived by hand from the cited
// dumps and manuals, not read back from the profile code), the split between what the part reports
// and what the model presents, and the switches derived from CPUID.

import assert from 'node:assert/strict';
import {
  cpuidOf, DEFAULT_PROFILE, findProfile, hardwareCpuid, hardwareFeatures, hardwareSvmSwitches,
  PROFILES, profileFeatures, signature, svmSwitches, type Profile,
} from '../model/profile.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { modelCanRun } from '../generator/index.ts';
import type { Case } from '../core/types.ts';

const get = (name: string): Profile => {
  const p = findProfile(name);
  assert.ok(p, `profile ${name} exists`);
  return p;
};

describe('CPU profiles', () => {
  it('has one profile per AMD family 10h, 15h, 17h, 19h, 1Ah, with unique names; amd-19h is the default', () => {
    assert.deepEqual(PROFILES.map((p) => p.family), [0x10, 0x15, 0x17, 0x19, 0x1a]);
    assert.equal(new Set(PROFILES.map((p) => p.name)).size, PROFILES.length);
    assert.equal(DEFAULT_PROFILE.name, 'amd-19h');
    assert.equal(DEFAULT_PROFILE, get('amd-19h'));
  });

  it('family/model/stepping signatures equal the dumps (APM vol. 3 E.3.2 encoding)', () => {
    // Bochs phenom_8650_toliman 0x00100F23; VirtualBox FX-8150 0x00600F12, Ryzen 7 1800X 0x00800F11
    assert.equal(hardwareCpuid(get('amd-10h'), 1, 0).eax, 0x00100f23);
    assert.equal(hardwareCpuid(get('amd-15h'), 1, 0).eax, 0x00600f12);
    assert.equal(hardwareCpuid(get('amd-17h'), 1, 0).eax, 0x00800f11);
    assert.equal(hardwareCpuid(get('amd-19h'), 1, 0).eax, 0x00a10f11);
    assert.equal(hardwareCpuid(get('amd-1ah'), 1, 0).eax, 0x00b00f00);
    assert.equal(signature(0x19, 0x11, 1), 0x00a10f11);
    for (const p of PROFILES) {
      assert.equal(hardwareCpuid(p, 0x8000_0001, 0).eax, hardwareCpuid(p, 1, 0).eax, `${p.name}: 8000_0001 EAX = 1 EAX`);
      assert.equal(hardwareCpuid(p, 1, 0).eax, signature(p.family, p.model, p.stepping), p.name);
    }
  });

  it('every profile reports AuthenticAMD, SVM (8000_0001 ECX bit 2), SVM revision 1', () => {
    for (const p of PROFILES) {
      const l0 = hardwareCpuid(p, 0, 0);
      assert.equal(Buffer.from(new Uint32Array([l0.ebx, l0.edx, l0.ecx]).buffer).toString('latin1'), 'AuthenticAMD', p.name);
      assert.equal(hardwareCpuid(p, 0x8000_0001, 0).ecx & 4, 4, p.name);
      assert.equal(hardwareCpuid(p, 0x8000_000a, 0).eax, 1, p.name);
      assert.ok(hardwareCpuid(p, 0x8000_0000, 0).eax >= 0x8000_000a, `${p.name}: extended leaves reach 8000_000A`);
      assert.ok(p.sources.length >= 2, `${p.name} cites sources`);
      assert.ok(p.basis === 'measured' || p.basis === 'assembled', p.name);
    }
  });

  it('8000_000A EBX/EDX as measured: 10h rev B 64 ASIDs NP|LBRV|SVML; 15h 0x10000, 0x14FF; 17h 0x8000, 0x1BCFF', () => {
    const a = (n: string) => hardwareCpuid(get(n), 0x8000_000a, 0);
    assert.deepEqual([a('amd-10h').ebx, a('amd-10h').edx], [0x40, 0x7]);
    assert.deepEqual([a('amd-15h').ebx, a('amd-15h').edx], [0x10000, 0x14ff]);
    assert.deepEqual([a('amd-17h').ebx, a('amd-17h').edx], [0x8000, 0x1bcff]);
  });

  it('NRIPS: absent on family 10h rev B, present from 15h on (what the nrips=on/off cases are compared with)', () => {
    assert.deepEqual(hardwareFeatures(get('amd-10h')), { svm: true, npt: true, nrips: false });
    for (const n of ['amd-15h', 'amd-17h', 'amd-19h', 'amd-1ah']) assert.deepEqual(hardwareFeatures(get(n)), { svm: true, npt: true, nrips: true }, n);
  });

  it('hardware switches follow 8000_000A EDX bit by bit', () => {
    const s10 = hardwareSvmSwitches(get('amd-10h'));
    assert.equal(s10.nrips, false);
    assert.equal(s10.decodeAssists, false);
    assert.equal(s10.vgif, false);
    assert.equal(s10.asids, 64);
    const s15 = hardwareSvmSwitches(get('amd-15h'));
    assert.deepEqual([s15.nrips, s15.decodeAssists, s15.vmcbClean, s15.flushByAsid, s15.pauseFilterThreshold, s15.avic, s15.vgif], [true, true, true, true, true, false, false]);
    const s17 = hardwareSvmSwitches(get('amd-17h'));
    assert.deepEqual([s17.avic, s17.vmsaveVirt, s17.vgif, s17.vnmi], [true, true, true, false]);
    const s19 = hardwareSvmSwitches(get('amd-19h'));
    assert.deepEqual([s19.vgif, s19.vnmi, s19.revision, s19.asids], [true, true, 1, 0x8000]);
  });

  it('NullSelectClearsBase (8000_0021 EAX bit 6) only on 19h and 1Ah', () => {
    const has = (n: string) => (cpuidOf(get(n), 0x8000_0021, 0).eax >> 6) & 1;
    assert.deepEqual(['amd-10h', 'amd-15h', 'amd-17h', 'amd-19h', 'amd-1ah'].map(has), [0, 0, 0, 1, 1]);
  });
});

describe('what the model presents', () => {
  it('the model backend follows the chosen profile: 10h rev B has no NRIPS to show, and can hide any feature', async () => {
    const info = await modelBackend({ profile: get('amd-10h') }).probe();
    assert.match(info.version ?? '', /profile amd-10h/);
    assert.equal(info.features.nrips.present, false);
    assert.equal(info.features.nrips.absent, true);
    assert.equal(info.features.svm.present, true);
  });

  it('modelCanRun: a case needing a feature present runs only where the profile has it; absence can always be given', () => {
    const nrips = { requires: [{ feature: 'nrips', present: true }] } as unknown as Case;
    const noNrips = { requires: [{ feature: 'nrips', present: false }] } as unknown as Case;
    const l1 = { requires: [] } as unknown as Case;
    assert.equal(modelCanRun(nrips, get('amd-10h')), false);
    assert.equal(modelCanRun(nrips, get('amd-19h')), true);
    for (const p of PROFILES) {
      assert.equal(modelCanRun(noNrips, p), true, p.name);
      assert.equal(modelCanRun(l1, p), true, p.name);
    }
  });
});
