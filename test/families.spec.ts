// CPU family detection (model/profiles/families.ts, runner/cpu.ts). The CPUID values are decoded by
// hand from APM vol. 3 appendix E.3.2 (EAX: stepping 3:0, base model 7:4, base family 11:8, ext.
// model 19:16, ext. family 27:20; family = base + ext. when base = 0Fh; model = ext.:base when
// base = 0Fh); the machine these specs were written on reads `cpu family 26, model 2, stepping 1`
// in /proc/cpuinfo (EPYC "Turin": CPUID 1 EAX 0x00B00F21).

import assert from 'node:assert/strict';
import { classifyCpu, decodeCpuidSignature, FAMILY_TABLE, familyRow, profileFamily, VENDOR_AMD, VENDOR_HYGON } from '../model/profiles/families.ts';
import { findProfile, PROFILES } from '../model/profile.ts';
import { backendCpu, parseMachineCpu } from '../runner/cpu.ts';
import { runCpu } from '../report/run-cpu.ts';
import { parseCpuinfo, hostInfo } from '../runner/probe.ts';
import type { BackendInfo, BackendKind, HostInfo } from '../core/types.ts';

const amd = (family: number, model: number, stepping = 0) => ({ vendor: VENDOR_AMD, family, model, stepping });

describe('CPU family detection', () => {
  it('decodes CPUID Fn0000_0001 EAX as AMD does', () => {
    // 0x00B00F21: ext. family 0Bh + base 0Fh = 1Ah; ext. model 0, base model 2; stepping 1 (this machine)
    assert.deepEqual(decodeCpuidSignature(0x00b00f21), { stepping: 1, baseModel: 2, baseFamily: 0xf, extModel: 0, extFamily: 0xb, family: 0x1a, model: 0x02 });
    // EPYC 9004 Genoa 0x00A10F11: family 0Fh + 0Ah = 19h, model 1:1 = 11h, stepping 1
    const g = decodeCpuidSignature(0x00a10f11);
    assert.equal(g.family, 0x19);
    assert.equal(g.model, 0x11);
    assert.equal(g.stepping, 1);
    // K10 rev. B3 0x00100F23: family 10h model 02h stepping 3
    assert.deepEqual([decodeCpuidSignature(0x00100f23).family, decodeCpuidSignature(0x00100f23).model], [0x10, 0x02]);
    // QEMU qemu64 (family 15, model 107 = 6Bh): ext. family 0, ext. model 6, base model Bh
    assert.deepEqual([decodeCpuidSignature(0x00060fb1).family, decodeCpuidSignature(0x00060fb1).model], [15, 107]);
    // base family below 0Fh: the extended fields do not count (K7 with stray ext. model bits)
    assert.deepEqual([decodeCpuidSignature(0x00010662).family, decodeCpuidSignature(0x00010662).model], [6, 6]);
  });

  it('maps family and model ranges to names and profiles', () => {
    const cases: Array<[number, number, string, string]> = [
      [0x19, 0x11, 'Zen 4', 'amd-19h'], // Genoa
      [0x19, 0x61, 'Zen 4', 'amd-19h'], // Raphael
      [0x19, 0x01, 'Zen 3', 'amd-19h'], // Milan
      [0x19, 0x44, 'Zen 3', 'amd-19h'], // Rembrandt (Zen 3+), ZEN3 range 20h–5Fh
      [0x17, 0x31, 'Zen 2', 'amd-17h'], // Rome
      [0x17, 0x71, 'Zen 2', 'amd-17h'], // Matisse
      [0x17, 0x08, 'Zen / Zen+', 'amd-17h'], // Pinnacle Ridge
      [0x1a, 0x02, 'Zen 5', 'amd-1ah'], // Turin (this machine)
      [0x1a, 0x44, 'Zen 5', 'amd-1ah'], // Granite Ridge
      [0x15, 0x02, 'Bulldozer family (Bulldozer, Piledriver)', 'amd-15h'],
      [0x15, 0x30, 'Steamroller', 'amd-15h'],
      [0x10, 0x02, 'K10', 'amd-10h'],
      [0x0f, 0x6b, 'K8 (rev. F/G)', 'amd-10h'], // qemu64
    ];
    for (const [family, model, name, profile] of cases) {
      const f = classifyCpu(amd(family, model));
      assert.equal(f.name, name, `family ${family.toString(16)}h model ${model.toString(16)}h`);
      assert.equal(f.profile, profile, `family ${family.toString(16)}h model ${model.toString(16)}h`);
      assert.ok(f.known);
    }
    assert.equal(classifyCpu(amd(0x19, 0x11)).slug, '19h-zen-4');
    assert.equal(classifyCpu(amd(0x17, 0x08)).slug, '17h-zen-zenplus');
    assert.equal(classifyCpu({ vendor: VENDOR_HYGON, family: 0x18, model: 1, stepping: 0 }).profile, 'amd-17h');
  });

  it('says so when a model or family is not in the table', () => {
    const gap = classifyCpu(amd(0x19, 0xc0));
    assert.equal(gap.known, false);
    assert.equal(gap.slug, '19h-unknown');
    assert.match(gap.name, /family 19h model C0h \(not in the family table\)/);
    assert.equal(gap.profile, 'amd-19h', 'still the family\'s profile');
    const intel = classifyCpu({ vendor: 'GenuineIntel', family: 6, model: 0x8f, stepping: 8 });
    assert.equal(intel.profile, undefined);
    assert.match(intel.source, /not AMD/);
  });

  it('keeps one table whose rows have sources, existing profiles and no overlaps', () => {
    for (const r of FAMILY_TABLE) {
      assert.ok(r.source.length > 10, `${r.name} has a source`);
      assert.ok(findProfile(r.profile), `${r.name}: profile ${r.profile} exists`);
      for (const [lo, hi] of r.models) assert.ok(lo <= hi && hi <= 0xff);
    }
    for (const a of FAMILY_TABLE) {
      for (const b of FAMILY_TABLE) {
        if (a === b || a.vendor !== b.vendor || a.family !== b.family) continue;
        for (const [lo1, hi1] of a.models) for (const [lo2, hi2] of b.models) assert.ok(hi1 < lo2 || hi2 < lo1, `${a.name} and ${b.name} overlap`);
      }
    }
    // every profile's own signature falls in a row that names that profile
    for (const p of PROFILES) {
      assert.equal(familyRow(p)?.profile, p.name, p.name);
      assert.equal(profileFamily(p.name)?.profile, p.name);
    }
  });

  it('gives each backend the CPU its records show', () => {
    const text = 'vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nstepping\t: 1\nmicrocode\t: 0xb002116\n\n';
    const host: HostInfo = { ...hostInfo({ cpu: parseCpuinfo(text), kernelRelease: '6.18', kvmDevice: 'ok', kvmModules: [] }) };
    assert.equal(host.microcode, '0xb002116');
    const kinds: Record<string, BackendKind> = { kvm: 'hardware', console: 'hardware', model: 'model', 'model-l0': 'model', 'model@amd-17h': 'model' };
    const info = (name: string, available = true): BackendInfo => ({ name, kind: kinds[name] ?? 'emulator', available, reason: '', features: {} as BackendInfo['features'] });
    const profile = findProfile('amd-10h')!;
    const kvm = backendCpu(info('kvm'), { host, profile })!;
    assert.equal(kvm.familyName, 'Zen 5');
    assert.equal(kvm.profile, 'amd-1ah');
    assert.equal(kvm.microcode, '0xb002116');
    const tcg = backendCpu(info('qemu-tcg'), { host, profile })!;
    assert.deepEqual([tcg.family, tcg.model, tcg.familyName], [15, 107, 'K8 (rev. F/G)']);
    assert.match(tcg.source, /qemu64/);
    const model = backendCpu(info('model'), { host, profile })!;
    assert.deepEqual([model.familyName, model.profile], ['K10', 'amd-10h']);
    assert.equal(backendCpu(info('console'), { host, profile }), undefined, 'a console machine is unknown unless given');
    // Bochs columns and their reference models: the emulated CPU, and the reference's own profile
    const ryzen = backendCpu(info('bochs-ryzen'), { host, profile })!;
    assert.deepEqual([ryzen.family, ryzen.model, ryzen.stepping, ryzen.profile], [0x17, 0x01, 1, 'amd-17h']);
    assert.equal(backendCpu(info('bochs-phenom'), { host, profile })?.profile, 'amd-10h');
    assert.equal(backendCpu(info('model@amd-17h'), { host, profile: findProfile('amd-19h')! })?.profile, 'amd-17h');
    const given = parseMachineCpu('0x00A10F11');
    assert.equal(backendCpu(info('console'), { host, profile, machineCpu: given })?.familyName, 'Zen 4');
    assert.throws(() => parseMachineCpu('zen4'), /CPUID Fn0000_0001 EAX/);
    assert.equal(parseMachineCpu('0x00A10F11', 'AMD EPYC 9654 96-Core Processor').modelName, 'AMD EPYC 9654 96-Core Processor');
    assert.equal(parseMachineCpu('HygonGenuine:0x00900F01').familyName, 'Hygon Dhyana (Zen)');
    // the run's family: the hardware backend's, else the model's profile
    assert.equal(runCpu([{ ...info('model'), cpu: model }, { ...info('kvm'), cpu: kvm }], host).familyName, 'Zen 5');
    assert.equal(runCpu([{ ...info('model'), cpu: model }, { ...info('qemu-tcg'), cpu: tcg }], host).familyName, 'K10');
    assert.equal(runCpu([{ ...info('model'), cpu: model }, { ...info('kvm', false), cpu: kvm }], host).familyName, 'K10', 'an unavailable kvm decides nothing');
    // a reference model column (it names itself as its reference) is not the run's model, even first
    const ref = { ...info('model@amd-17h'), reference: 'model@amd-17h', cpu: backendCpu(info('model@amd-17h'), { host, profile })! };
    assert.equal(runCpu([ref, { ...info('model-l0'), cpu: model }, { ...info('bochs-ryzen'), cpu: ryzen }], host).familyName, 'K10');
    // decided by kind, not name: a backend of another name that is hardware files the run
    assert.equal(runCpu([{ ...info('model'), cpu: model }, { ...info('elsewhere'), kind: 'hardware', cpu: kvm }], host).familyName, 'Zen 5');
  });
});
