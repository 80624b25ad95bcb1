import assert from 'node:assert/strict';
import {
  hostInfo,
  kvmDeviceProblem,
  kvmFeatures,
  meetFeatures,
  parseCpuinfo,
  readHostFacts,
  type HostFs,
} from '../runner/probe.ts';

/** A fake /proc and /sys: files by path; /sys/module lists the modules that have a file. */
function fakeFs(files: Record<string, string>, dev: string | undefined = undefined): HostFs {
  return {
    readText: async (p) => files[p],
    list: async (p) =>
      p === '/sys/module'
        ? [...new Set(Object.keys(files).filter((f) => f.startsWith('/sys/module/')).map((f) => f.split('/')[3]!))]
        : undefined,
    openReadWrite: async () => dev,
    which: async () => undefined,
  };
}

const CPUINFO_ZEN3 = `processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
stepping\t: 1
flags\t\t: fpu vme de pse svm npt lbrv nrip_save tsc_scale vmcb_clean

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 99
`;

const AMD_NESTED = {
  '/proc/cpuinfo': CPUINFO_ZEN3,
  '/proc/sys/kernel/osrelease': '6.1.0-18-amd64\n',
  '/sys/module/kvm/parameters/halt_poll_ns': '200000',
  '/sys/module/kvm_amd/parameters/nested': '1\n',
  '/sys/module/kvm_amd/parameters/npt': 'Y\n',
};

describe('runner/probe', () => {
  it('reads the first processor of /proc/cpuinfo', () => {
    const c = parseCpuinfo(CPUINFO_ZEN3);
    assert.equal(c.vendor, 'AuthenticAMD');
    assert.equal(c.family, 25);
    assert.equal(c.model, 1);
    assert.equal(c.stepping, 1);
    assert.equal(c.modelName, 'AMD EPYC 7763 64-Core Processor');
    assert.ok(c.flags.has('nrip_save'));
  });

  it('gives the host info for results.json', async () => {
    const h = hostInfo(await readHostFacts(fakeFs(AMD_NESTED)));
    assert.deepEqual(h, {
      vendor: 'AuthenticAMD',
      family: 25,
      model: 1,
      stepping: 1,
      modelName: 'AMD EPYC 7763 64-Core Processor',
      kernel: '6.1.0-18-amd64',
    });
  });

  it('an AMD host with kvm_amd nested=1 can show SVM, NPT and NRIPS', async () => {
    const facts = await readHostFacts(fakeFs(AMD_NESTED));
    assert.deepEqual(facts.kvmModules, ['kvm_amd']);
    assert.equal(kvmDeviceProblem(facts), undefined);
    const f = kvmFeatures(facts);
    for (const k of ['svm', 'npt', 'nrips'] as const) assert.deepEqual(f[k], { present: true, absent: true, reason: '' }, k);
  });

  it('says nested=0, npt=0 and a CPU without nrip_save', async () => {
    const nested0 = kvmFeatures(await readHostFacts(fakeFs({ ...AMD_NESTED, '/sys/module/kvm_amd/parameters/nested': '0\n' })));
    assert.equal(nested0.svm.present, false);
    assert.match(nested0.svm.reason, /nested=0.*modprobe kvm_amd nested=1/);
    assert.match(nested0.nrips.reason, /^needs SVM/);

    const npt0 = kvmFeatures(await readHostFacts(fakeFs({ ...AMD_NESTED, '/sys/module/kvm_amd/parameters/npt': 'N\n' })));
    assert.equal(npt0.svm.present, true);
    assert.equal(npt0.npt.present, false);
    assert.match(npt0.npt.reason, /npt=N/);

    const fam10 = kvmFeatures(await readHostFacts(fakeFs({ ...AMD_NESTED, '/proc/cpuinfo': CPUINFO_ZEN3.replace(' nrip_save', '') })));
    assert.equal(fam10.svm.present, true);
    assert.equal(fam10.nrips.present, false);
    assert.match(fam10.nrips.reason, /nrip_save/);
  });

  it('names the KVM flavour when it is not kvm_amd (kvm_pvm, kvm_intel)', async () => {
    const pvm = await readHostFacts(fakeFs({
      '/proc/cpuinfo': 'vendor_id\t: AuthenticAMD\nflags\t\t: fpu lm hypervisor\n',
      '/sys/module/kvm/parameters/halt_poll_ns': '0',
      '/sys/module/kvm_pvm/parameters/force': 'N',
    }));
    assert.deepEqual(pvm.kvmModules, ['kvm_pvm']);
    const f = kvmFeatures(pvm);
    assert.equal(f.svm.present, false);
    assert.match(f.svm.reason, /kvm_pvm \(PVM, a paravirtual KVM/);
    assert.equal(f.svm.absent, true);

    const intel = kvmFeatures(await readHostFacts(fakeFs({ '/proc/cpuinfo': 'flags\t: vmx\n', '/sys/module/kvm_intel/parameters/nested': 'Y' })));
    assert.match(intel.svm.reason, /kvm_intel \(an Intel VMX host/);

    const amdNoSvm = kvmFeatures(await readHostFacts(fakeFs({ ...AMD_NESTED, '/proc/cpuinfo': 'flags\t: fpu lm\n' })));
    assert.match(amdNoSvm.svm.reason, /no svm flag in \/proc\/cpuinfo/);
  });

  it('says why /dev/kvm cannot be used', async () => {
    assert.match(kvmDeviceProblem(await readHostFacts(fakeFs({}, 'ENOENT')))!, /does not exist: no KVM module is loaded/);
    assert.match(kvmDeviceProblem(await readHostFacts(fakeFs(AMD_NESTED, 'ENOENT')))!, /does not exist although kvm_amd is loaded/);
    assert.match(kvmDeviceProblem(await readHostFacts(fakeFs(AMD_NESTED, 'EACCES')))!, /not accessible read-write \(EACCES\)/);
  });

  it('meets two feature views: the stricter wins, the first reason is kept', () => {
    const yes = { present: true, absent: true, reason: '' };
    const t = meetFeatures(
      { svm: yes, npt: { present: false, absent: true, reason: 'host: npt=0' }, nrips: yes },
      { svm: { present: false, absent: true, reason: 'qemu says no' }, npt: { present: false, absent: true, reason: 'qemu: npt' }, nrips: yes },
    );
    assert.deepEqual(t.svm, { present: false, absent: true, reason: 'qemu says no' });
    assert.deepEqual(t.npt, { present: false, absent: true, reason: 'host: npt=0' });
    assert.deepEqual(t.nrips, yes);
  });
});
