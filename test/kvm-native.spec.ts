// The native KVM runner (native/kvm/, runner/backends/kvm.ts, runner/kvm-cpuid.ts).
//
// Everything that does not need /dev/kvm runs everywhere: the helper builds with -Werror, its own
// checks (--selftest), its loader against the model's on a real kernel, the CPUID rules on
// recorded-shape tables, the way each end of the helper becomes a BootResult, the probe's reasons,
// and the boot plumbing through fake helpers (stdin CPUID, stdout lines, timeouts that kill the
// process group, a helper that segfaults). The last block needs /dev/kvm and is skipped, with the
// reason printed, where there is none: it is never a pass there.

import assert from 'node:assert/strict';
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendInfo, Kernel } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { Machine } from '../model/machine.ts';
import {
  classifyKvmExit,
  KVM_HELPER,
  kvmNativeBackend,
  parseStatus,
  STATUS_PREFIX,
  tortureCounts,
  tortureNote,
  type KvmProbe,
} from '../runner/backends/kvm.ts';
import { CpuidError, cpuidHas, formatCpuid, guestCpuid, type CpuidEntry } from '../runner/kvm-cpuid.ts';
import type { HostFs } from '../runner/probe.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { runKernels, type ScheduleResults } from '../runner/schedule.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'kvm');
const fixture = async (name: string): Promise<CpuidEntry[]> =>
  (JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as { cpuid: CpuidEntry[] }).cpuid;

const leaf = (t: CpuidEntry[], f: number): CpuidEntry => t.find((e) => e.function === f && e.index === 0)!;

describe('native KVM runner: the helper without /dev/kvm', () => {
  let elf: string;
  before(async function () {
    // a fresh clone has no helper yet: build it as `make native` does, with -Wall -Wextra -Werror
    const r = await execa('make', ['-s', 'native'], { cwd: ROOT, reject: false });
    assert.equal(r.exitCode, 0, `make native failed:\n${r.stderr}`);
    const cases = filterCases(expandAll(await loadTemplates()), ['l1.int3/*']);
    elf = (await buildKernels(cases))[0]!.elf;
  });

  it('passes its own checks (UART with DLAB, exit ports, CPUID text, ELF loader, errors)', async () => {
    const r = await execa(KVM_HELPER, ['--selftest'], { reject: false });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.stdout, /^ok \d+ checks, 0 failed$/m);
  });

  it('loads a real kernel exactly as the model does (same bytes, entry, multiboot block)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-kvm-'));
    try {
      const dump = join(dir, 'ram.bin');
      const cmdline = 'start=1 end=3';
      const r = await execa(KVM_HELPER, ['--check', '--kernel', elf, '--cmdline', cmdline, '--dump', dump]);
      const info = JSON.parse(r.stdout) as { entry: number; highest: number; mbi: number; eax: number; gdt: number };
      const got = await readFile(dump);
      const m = new Machine({ ramBytes: 128 * 1024 * 1024 });
      try {
        m.loadMultiboot(await readFile(elf), cmdline);
        assert.equal(BigInt(info.entry), m.cpu.rip);
        assert.equal(BigInt(info.mbi), m.cpu.gpr[3]);
        assert.equal(info.eax, 0x2badb002);
        const want = Buffer.from(m.mem.bytes.subarray(0, info.highest + 1));
        // the helper also writes a flat GDT for GDTR (24 bytes); the model needs none
        want.set(got.subarray(info.gdt, info.gdt + 24), info.gdt);
        assert.equal(got.length, want.length);
        assert.ok(got.equals(want), 'guest RAM after loading differs from the model loader');
        assert.notDeepEqual([...got.subarray(info.gdt, info.gdt + 24)], new Array(24).fill(0), 'the GDT is there');
      } finally {
        m.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad input with a status line that says why', async () => {
    const notElf = await execa(KVM_HELPER, ['--check', '--kernel', join(ROOT, 'README.md')], { reject: false });
    assert.equal(notElf.exitCode, 2);
    assert.match(parseStatus(notElf.stderr)?.detail ?? '', /README\.md: not an ELF file/);
    const usage = await execa(KVM_HELPER, ['--kernel'], { reject: false });
    assert.equal(usage.exitCode, 3);
    assert.equal(parseStatus(usage.stderr)?.reason, 'usage');
    const mem = await execa(KVM_HELPER, ['--kernel', elf, '--mem-mib', 'lots'], { reject: false });
    assert.match(parseStatus(mem.stderr)?.detail ?? '', /--mem-mib: expected a positive number/);
  });

  it('reads the CPUID text the runner writes (TS format -> C parser)', async () => {
    const table = guestCpuid(await fixture('supported-cpuid-amd-nested.json'), { nrips: false });
    const r = await execa(KVM_HELPER, ['--check', '--kernel', elf, '--cpuid', '-'], { input: formatCpuid(table) });
    const parsed = (JSON.parse(r.stdout) as { cpuid: number[][] }).cpuid;
    assert.deepEqual(parsed, table.map((e) => [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx]));
  });
});

describe('native KVM runner: guest CPUID from KVM_GET_SUPPORTED_CPUID', () => {
  it('hides NRIPS on an NRIPS host by clearing 8000_000A EDX bit 3 and nothing else', async () => {
    const host = await fixture('supported-cpuid-amd-nested.json');
    assert.ok(cpuidHas(host, 'svm') && cpuidHas(host, 'nrips') && cpuidHas(host, 'npt'));
    const g = guestCpuid(host, { nrips: false });
    assert.equal(leaf(g, 0x8000_000a).edx, leaf(host, 0x8000_000a).edx & ~0x8);
    assert.equal(cpuidHas(g, 'nrips'), false);
    assert.equal(cpuidHas(g, 'npt'), true);
    // every other leaf and register as KVM gave them
    const strip = (t: CpuidEntry[]) => t.map((e) => (e.function === 0x8000_000a ? { ...e, edx: 0 } : e));
    assert.deepEqual(strip(g), strip(host));
    assert.equal(leaf(host, 0x8000_000a).edx & 0x8, 0x8, 'the input table is not modified');
  });

  it('hides SVM: 8000_0001 ECX bit 2 clear and leaf 8000_000A emptied', async () => {
    const host = await fixture('supported-cpuid-amd-nested.json');
    const g = guestCpuid(host, { svm: false });
    assert.equal(leaf(g, 0x8000_0001).ecx, leaf(host, 0x8000_0001).ecx & ~0x4);
    const svm = leaf(g, 0x8000_000a);
    assert.deepEqual([svm.eax, svm.ebx, svm.ecx, svm.edx], [0, 0, 0, 0]);
    assert.equal(cpuidHas(g, 'nrips'), false, 'no SVM sub-feature without SVM');
  });

  it('a feature asked present that KVM does not offer is an error, not a silent boot', async () => {
    const noSvm = await fixture('supported-cpuid-no-svm.json');
    assert.equal(cpuidHas(noSvm, 'svm'), false);
    assert.throws(() => guestCpuid(noSvm, { svm: true, nrips: true }), CpuidError);
    assert.throws(() => guestCpuid(noSvm, { nrips: true }), /does not offer nrips \(CPUID 0x8000000a EDX bit 3\)/);
    // hiding what is not there is fine (nrips=off kernels on a host without SVM: their cases need SVM anyway)
    assert.deepEqual(guestCpuid(noSvm, { nrips: false }), noSvm);
    assert.deepEqual(guestCpuid(noSvm, {}), noSvm);
  });

  it('prints the table as the helper reads it', () => {
    assert.equal(
      formatCpuid([{ function: 0x8000_000a, index: 0, flags: 0, eax: 1, ebx: 8, ecx: 0, edx: 0xffff_fff7 }]),
      '0x8000000a 0x0 0x0 0x1 0x8 0x0 0xfffffff7\n',
    );
  });
});

describe('native KVM runner: how a boot ended', () => {
  const base = { stderr: '', idleTimeoutMs: 30_000 };
  const status = (o: object) => parseStatus(`noise\n${STATUS_PREFIX}${JSON.stringify(o)}\n`);

  it('the exit ports end the boot normally', () => {
    assert.deepEqual(classifyKvmExit({ ...base, status: status({ end: 'exited', reason: 'debug-exit', value: 0 }) }), {
      end: 'exited',
      detail: 'debug-exit value 0',
    });
    assert.equal(classifyKvmExit({ ...base, status: status({ end: 'exited', reason: 'shutdown-port' }) }).end, 'exited');
  });

  it('KVM internal errors and failed entries are crashes with the suberror / reason and RIP', () => {
    const ie = classifyKvmExit({
      ...base,
      status: status({ end: 'crashed', reason: 'internal-error', suberror: 1, suberror_name: 'emulation failure', rip: '0x1001bd', data: ['0x1'] }),
    });
    assert.equal(ie.end, 'crashed');
    assert.equal(ie.detail, 'KVM internal error. Suberror: 1 (emulation failure) at RIP=0x1001bd, data 0x1');
    const fe = classifyKvmExit({ ...base, status: status({ end: 'crashed', reason: 'fail-entry', hardware_entry_failure_reason: '0xffffffffffffffff', rip: '0x100000' }) });
    assert.equal(fe.detail, 'KVM: entry failed, hardware error 0xffffffffffffffff at RIP=0x100000');
    assert.match(classifyKvmExit({ ...base, status: status({ end: 'crashed', reason: 'triple-fault', rip: '0x1' }) }).detail, /^triple fault/);
  });

  it('a helper that dies, hangs or cannot start is a crash or timeout of that boot only', () => {
    const segv = classifyKvmExit({ ...base, signal: 'SIGSEGV', stderr: 'Segmentation fault\n' });
    assert.deepEqual(segv, { end: 'crashed', detail: 'svmconf-kvm ended without a status line (killed by SIGSEGV): Segmentation fault' });
    assert.equal(classifyKvmExit({ ...base, killedFor: 'timeout' }).end, 'timeout');
    assert.match(classifyKvmExit({ ...base, spawnError: 'ENOENT' }).detail, /make native/);
    assert.match(classifyKvmExit({ ...base, status: status({ end: 'error', reason: 'setup', detail: 'KVM_CREATE_VM: ENOMEM' }) }).detail, /could not start the guest.*ENOMEM/);
  });

  it('torture counts go into the detail', () => {
    const t = { restores: 7, at_exit: 5, at_timer: 2, msrs_saved: 40, msrs_unreadable: 3, msrs_unwritable: 1, nested_state_bytes: 8320, saw_guest_mode: true, unwritable: ['0xc0010117'] };
    const d = classifyKvmExit({ ...base, status: status({ end: 'exited', reason: 'debug-exit', value: 0, torture: t }) }).detail;
    assert.equal(d, 'debug-exit value 0; torture: 7 restores (5 at exits, 2 at timer signals), some while L2 ran; MSRs KVM would not restore, left out: 0xc0010117');
    // the same numbers as data (BootResult.torture); absent fields of older helpers take their defaults
    assert.deepEqual(tortureCounts(status({ end: 'exited', reason: 'debug-exit', torture: t })!), { restores: 7, atExits: 5, atTimer: 2, every: 1, control: false, inL2: true, msrsLeftOut: ['0xc0010117'] });
    const control = status({ end: 'exited', reason: 'debug-exit', torture: { ...t, every: 4, control: true, saw_guest_mode: false } })!;
    assert.deepEqual(tortureCounts(control), { restores: 7, atExits: 5, atTimer: 2, every: 4, control: true, inL2: false, msrsLeftOut: ['0xc0010117'] });
    assert.equal(tortureNote(control), 'torture control: 7 forced exits (5 at 1 exit in 4, 2 at timer signals), no save/restore');
    assert.equal(tortureCounts(status({ end: 'exited', reason: 'debug-exit' })!), undefined);
  });
});

/** A fake /proc and /sys (as test/runner-probe.spec.ts). */
function fakeFs(files: Record<string, string>, dev: string | undefined): HostFs {
  return {
    readText: async (p) => files[p],
    list: async (p) => (p === '/sys/module' ? [...new Set(Object.keys(files).filter((f) => f.startsWith('/sys/module/')).map((f) => f.split('/')[3]!))] : undefined),
    openReadWrite: async () => dev,
    which: async () => undefined,
  };
}
const CPUINFO = (flags: string) => `vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu lm ${flags}\n`;
const AMD = (nested: string, flags = 'svm npt nrip_save') => ({
  '/proc/cpuinfo': CPUINFO(flags),
  '/sys/module/kvm/parameters/halt_poll_ns': '200000',
  '/sys/module/kvm_amd/parameters/nested': `${nested}\n`,
  '/sys/module/kvm_amd/parameters/npt': 'Y\n',
});
const PVM = { '/proc/cpuinfo': CPUINFO('hypervisor'), '/sys/module/kvm/parameters/halt_poll_ns': '0', '/sys/module/kvm_pvm/parameters/force': 'N' };

async function probeWith(files: Record<string, string>, dev: string | undefined, cpuid: string | undefined, built = true): Promise<BackendInfo> {
  const answer: KvmProbe | undefined = cpuid === undefined ? undefined : { api: 12, caps: { nested_state: 8320, xsave2: 4096, xsave: true, xcrs: true, sregs2: true, split_irqchip: true, exception_payload: true, immediate_exit: true, debugregs: true, vcpu_events: true }, cpuid: await fixture(cpuid) };
  return kvmNativeBackend({
    fs: fakeFs(files, dev),
    helperExists: async () => built,
    probeHelper: async () => ({ stdout: answer ? JSON.stringify(answer) : '', stderr: answer ? '' : `${STATUS_PREFIX}{"end":"error","reason":"no-kvm","detail":"KVM_CREATE_VM: Operation not permitted"}\n`, exitCode: answer ? 0 : 2 }),
  }).probe();
}

describe('native KVM runner: why it is or is not available', () => {
  it('no /dev/kvm: names kvm_pvm that did not bind, or the missing module', async () => {
    const pvm = await probeWith(PVM, 'ENOENT', undefined);
    assert.equal(pvm.available, false);
    assert.match(pvm.reason, /^\/dev\/kvm does not exist: kvm_pvm is loaded but did not bind/);
    const none = await probeWith({ '/proc/cpuinfo': CPUINFO('') }, 'ENOENT', undefined);
    assert.match(none.reason, /no KVM module is loaded/);
    const perm = await probeWith(AMD('1'), 'EACCES', undefined);
    assert.match(perm.reason, /not accessible read-write \(EACCES\)/);
  });

  it('the helper not built says how to build it', async () => {
    const r = await probeWith(AMD('1'), undefined, 'supported-cpuid-amd-nested.json', false);
    assert.equal(r.available, false);
    assert.match(r.reason, /native helper is not built: run `make native`/);
  });

  it('a helper probe that fails is unavailable with its detail', async () => {
    const r = await probeWith(AMD('1'), undefined, undefined);
    assert.equal(r.available, false);
    assert.match(r.reason, /--probe failed: KVM_CREATE_VM: Operation not permitted/);
  });

  it('AMD with nested=1: SVM, NPT, NRIPS shown and hidden', async () => {
    const r = await probeWith(AMD('1'), undefined, 'supported-cpuid-amd-nested.json');
    assert.equal(r.available, true);
    for (const f of ['svm', 'npt', 'nrips'] as const) assert.deepEqual(r.features[f], { present: true, absent: true, reason: '' }, f);
    assert.match(r.version ?? '', /KVM API 12.*nested state 8320 bytes/);
  });

  it('nested=0, no svm flag, or a KVM that does not offer SVM: L1 only, with the reason', async () => {
    const n0 = await probeWith(AMD('0'), undefined, 'supported-cpuid-no-svm.json');
    assert.equal(n0.available, true);
    assert.equal(n0.features.svm.present, false);
    assert.match(n0.features.svm.reason, /kvm_amd nested=0.*modprobe kvm_amd nested=1/);
    assert.equal(n0.features.nrips.absent, true);
    const noFlag = await probeWith(AMD('1', 'npt'), undefined, 'supported-cpuid-no-svm.json');
    assert.match(noFlag.features.svm.reason, /no svm flag/);
    const kvmSays = await probeWith(AMD('1'), undefined, 'supported-cpuid-no-svm.json');
    assert.equal(kvmSays.features.svm.present, false);
    assert.match(kvmSays.features.svm.reason, /KVM_GET_SUPPORTED_CPUID does not offer svm/);
  });
});

describe('native KVM runner: boots through a fake helper', () => {
  let dir: string;
  const kernel = (): Kernel => ({ id: 'k#0', cases: [], cpu: { nrips: false }, elf: '/x/kernel.elf', bin: '', map: '' });
  const script = async (name: string, body: string): Promise<string> => {
    const p = join(dir, name);
    await writeFile(p, `#!/bin/sh\n${body}\n`);
    await chmod(p, 0o755);
    return p;
  };
  const backend = (helper: string, torture = false) =>
    kvmNativeBackend({
      helper,
      torture,
      tortureTimerUs: 2000,
      fs: fakeFs(AMD('1'), undefined),
      helperExists: async () => true,
      probeHelper: async () => ({
        stdout: JSON.stringify({ api: 12, caps: { nested_state: 0, xsave2: 0, xsave: true, xcrs: true, sregs2: true, split_irqchip: true, exception_payload: true, immediate_exit: true, debugregs: true, vcpu_events: true }, cpuid: JSON.parse(JSON.stringify((globalThis as { __cpuid?: unknown }).__cpuid)) }),
        stderr: '',
        exitCode: 0,
      }),
    });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svmconf-kvm-fake-'));
    (globalThis as { __cpuid?: unknown }).__cpuid = await fixture('supported-cpuid-amd-nested.json');
  });
  after(async () => {
    delete (globalThis as { __cpuid?: unknown }).__cpuid;
    await rm(dir, { recursive: true, force: true });
  });

  it('hands the filtered CPUID on stdin, the command line as args, and reads lines and status', async () => {
    const helper = await script(
      'ok.sh',
      `cat > "${dir}/cpuid.txt"; echo "$@" > "${dir}/args.txt"
printf 'SVMCONF BEGIN k#0 1 0 00000000\\r\\nSVMCONF END 00000000\\n'
echo '${STATUS_PREFIX}{"end":"exited","reason":"debug-exit","value":0,"torture":{"restores":3,"at_exit":2,"at_timer":1,"msrs_saved":1,"msrs_unreadable":0,"msrs_unwritable":0,"nested_state_bytes":0,"saw_guest_mode":false,"unwritable":[]}}' >&2`,
    );
    const b = backend(helper, true);
    const r = await b.boot({ kernel: kernel(), start: 2, end: 4, cpu: { nrips: false }, idleTimeoutMs: 10_000 });
    assert.equal(r.end, 'exited');
    assert.deepEqual(r.lines, ['SVMCONF BEGIN k#0 1 0 00000000', 'SVMCONF END 00000000']);
    assert.equal(r.note, 'torture: 3 restores (2 at exits, 1 at timer signals)');
    assert.deepEqual(r.torture, { restores: 3, atExits: 2, atTimer: 1, every: 1, control: false, inL2: false, msrsLeftOut: [] });
    const args = (await readFile(join(dir, 'args.txt'), 'utf8')).trim();
    assert.equal(args, '--kernel /x/kernel.elf --cmdline start=2 end=4 --mem-mib 128 --cpuid - --torture --torture-timer-us 2000');
    const svm = (await readFile(join(dir, 'cpuid.txt'), 'utf8')).split('\n').find((l) => l.startsWith('0x8000000a '));
    assert.equal(svm, '0x8000000a 0x0 0x0 0x1 0x8 0x0 0x114f7', 'NRIPS (bit 3) cleared from 0x114ff');
  });

  it('a silent helper is killed with its whole process group (TIMEOUT), and a segfault is a crash', async function () {
    const pidFile = join(dir, 'child.pid');
    const hang = await script('hang.sh', `cat >/dev/null; echo 'SVMCONF BEGIN'; sleep 60 & echo $! > "${pidFile}"; wait`);
    const t = await backend(hang).boot({ kernel: kernel(), start: 0, cpu: {}, idleTimeoutMs: 500 });
    assert.equal(t.end, 'timeout');
    assert.deepEqual(t.lines, ['SVMCONF BEGIN']);
    const pid = Number(await readFile(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    // gone, or a zombie waiting for an init that may never reap it: either way no longer running
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').then((t) => t.slice(t.lastIndexOf(')') + 2, t.lastIndexOf(')') + 3), () => 'gone');
    assert.ok(state === 'gone' || state === 'Z', `the helper's child outlived the timeout (state ${state})`);
    const segv = await script('segv.sh', 'cat >/dev/null; echo "SVMCONF BEGIN"; kill -SEGV $$');
    const s = await backend(segv).boot({ kernel: kernel(), start: 0, cpu: {}, idleTimeoutMs: 5000 });
    assert.equal(s.end, 'crashed');
    assert.match(s.detail, /ended without a status line \(killed by SIGSEGV\)/);
  });
});

// ---------------------------------------------------------------------------------------------
// The real helper over a stand-in for /dev/kvm (native/kvm/test/fakekvm.c, LD_PRELOAD): a scripted
// guest that replays the model's serial output through the helper's port handling. It checks the
// helper's run loop and its --torture cycle here, where there is no KVM; it says nothing about
// whether KVM accepts the same ioctls (the next block does, where /dev/kvm exists).

describe('native KVM runner: the real helper over a scripted stand-in for /dev/kvm', function () {
  this.timeout(120_000);
  let dir: string;
  let kernels: Kernel[];
  let model: ScheduleResults;
  const FAKE = join(ROOT, 'build', 'native', 'fakekvm.so');

  before(async () => {
    await execa('make', ['-s', 'native', 'native-fake'], { cwd: ROOT });
    dir = await mkdtemp(join(tmpdir(), 'svmconf-fakekvm-'));
    kernels = await buildKernels(filterCases(expandAll(await loadTemplates()), ['l1.int3/*']));
    assert.equal(kernels.length, 1);
    // what the fake guest prints: the model's own serial output for the whole batch
    const m = modelBackend();
    const boot = await m.boot({ kernel: kernels[0]!, start: 0, cpu: kernels[0]!.cpu, idleTimeoutMs: 60_000 });
    await writeFile(join(dir, 'com1.txt'), boot.lines.map((l) => `${l}\n`).join(''));
    model = await runKernels(kernels, [{ backend: m, info: await m.probe() }], { jobs: 1, idleTimeoutMs: 60_000 });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fakeBackend = (env: Record<string, string>, torture = false) =>
    kvmNativeBackend({
      torture,
      tortureTimerUs: 1000,
      env: { LD_PRELOAD: FAKE, FAKEKVM_OUTPUT: join(dir, 'com1.txt'), FAKEKVM_LOG: join(dir, 'fake.log'), ...env },
      fs: fakeFs(AMD('1'), undefined),
    });
  const runOn = async (env: Record<string, string>, torture: boolean) => {
    const b = fakeBackend(env, torture);
    const info = await b.probe();
    assert.equal(info.available, true, info.reason);
    return runKernels(kernels, [{ backend: b, info }], { jobs: 1, idleTimeoutMs: 20_000 });
  };

  it('boots through the helper: every case OK with the model\'s record; the guest CPUID is what the runner computed', async () => {
    const plain = await runOn({ FAKEKVM_CPUID_OUT: join(dir, 'cpuid.txt') }, false);
    for (const [id, row] of plain) assert.deepEqual([row.kvm!.status, row.kvm!.record], ['OK', model.get(id)!.model!.record], id);
    // the stand-in's supported table has NRIPS (0x8000000a EDX 0x9); the runner hid nothing for these
    // kernels, so the helper handed it on unchanged through KVM_SET_CPUID2
    const set = await readFile(join(dir, 'cpuid.txt'), 'utf8');
    assert.match(set, /^8000000a 0 0 1 8 0 9$/m);
  });

  it('--torture: identical records, and the save/restore cycles happened and were counted (at exits and at timer signals)', async () => {
    await rm(join(dir, 'fake.log'), { force: true });
    const tortured = await runOn({}, true);
    let note = '';
    for (const [id, row] of tortured) {
      const r = row.kvm!;
      assert.deepEqual([r.status, r.record], ['OK', model.get(id)!.model!.record], `${id}: ${r.reason}`);
      note = r.note ?? '';
    }
    const n = /^torture: (\d+) restores \((\d+) at exits, (\d+) at timer signals\); MSRs KVM would not restore, left out: 0xc0010117$/.exec(note);
    assert.ok(n, note);
    const [restores, atExit, atTimer] = [Number(n[1]), Number(n[2]), Number(n[3])];
    assert.ok(atExit > 100, `at exits: ${atExit}`);
    assert.ok(atTimer > 0, 'no restore at a timer signal');
    assert.equal(restores, atExit + atTimer);
    const counts = [...tortured.values()].at(-1)!.kvm!.torture!;
    assert.deepEqual([counts.restores, counts.atExits, counts.atTimer, counts.msrsLeftOut], [restores, atExit, atTimer, ['0xc0010117']], 'the note\'s numbers, as CaseResult.torture');
    // each restore built a new VM: the stand-in saw one VM per restore plus the first (and the probe's)
    const log = await readFile(join(dir, 'fake.log'), 'utf8');
    assert.equal(log.split('\n').filter((l) => l === 'create vm').length, restores + 2);
    assert.doesNotMatch(log, /before|without THRE|bad entry|unhandled/);
  });

  it('a KVM internal error is a CRASH of the running case with suberror and RIP; NRIPS hidden reaches KVM_SET_CPUID2', async () => {
    const b = fakeBackend({ FAKEKVM_FAIL_AT: '40', FAKEKVM_CPUID_OUT: join(dir, 'cpuid-off.txt') });
    await b.probe();
    const r = await b.boot({ kernel: { ...kernels[0]!, cpu: { nrips: false } }, start: 0, cpu: { nrips: false }, idleTimeoutMs: 20_000 });
    assert.equal(r.end, 'crashed');
    assert.equal(r.detail, 'KVM internal error. Suberror: 1 (emulation failure) at RIP=0x1001bd, data 0x1 0xfeeb0b0f02ebcc0f');
    assert.match(await readFile(join(dir, 'cpuid-off.txt'), 'utf8'), /^8000000a 0 0 1 8 0 1$/m, 'NRIPS (EDX bit 3) cleared');
  });
});

// ---------------------------------------------------------------------------------------------
// On /dev/kvm. Skipped where the kvm backend is unavailable, and the reason is printed.

describe('native KVM runner on this machine\'s /dev/kvm', function () {
  this.timeout(600_000);
  let kernels: Kernel[];
  let plain: ScheduleResults;
  const L1 = ['l1.*'];

  before(async function () {
    await execa('make', ['-s', 'native'], { cwd: ROOT });
    const info = await kvmNativeBackend().probe();
    if (!info.available) {
      process.stdout.write(`      skipped, kvm unavailable: ${info.reason}\n`);
      this.skip();
    }
    kernels = await buildKernels(filterCases(expandAll(await loadTemplates()), L1));
  });

  const run = async (torture: boolean): Promise<ScheduleResults> => {
    const b = kvmNativeBackend({ torture });
    const info = await b.probe();
    return runKernels(kernels, [{ backend: b, info }], { jobs: 1, idleTimeoutMs: 60_000 });
  };

  it('runs the L1 cases; every record it gives equals the model\'s', async () => {
    plain = await run(false);
    const m = modelBackend();
    const model = await runKernels(kernels, [{ backend: m, info: await m.probe() }], { jobs: 1, idleTimeoutMs: 60_000 });
    let ok = 0;
    for (const [id, row] of plain) {
      const k = row.kvm!;
      const ref = model.get(id)!.model!;
      if (k.status === 'OK') {
        ok++;
        // on the bits the manual defines in that case (the model's mask; every bit when it gives none)
        const mask = ref.mask ? Buffer.from(ref.mask, 'hex') : undefined;
        const masked = (hex: string) => (mask ? Buffer.from(Buffer.from(hex, 'hex').map((b, i) => b & (mask[i] ?? 0xff))).toString('hex') : hex);
        assert.equal(masked(k.record ?? ''), masked(ref.record ?? ''), `${id}: kvm record differs from the model's`);
      } else {
        process.stdout.write(`      ${id}: ${k.status} ${k.reason ?? ''}\n`);
        assert.ok(['CRASH', 'SKIP'].includes(k.status), `${id}: ${k.status} ${k.reason}`);
      }
    }
    assert.ok(ok > 0, 'no L1 case gave a record');
  });

  it('--torture: the same statuses and records, and save/restore cycles actually happened (counted)', async () => {
    const tortured = await run(true);
    let restores = 0;
    const seen = new Set<string>();
    for (const [id, row] of tortured) {
      const t = row.kvm!;
      const p = plain.get(id)!.kvm!;
      assert.equal(t.status, p.status, `${id}: ${t.reason}`);
      assert.equal(t.record, p.record, `${id}: record changed under torture`);
      const n = /torture: (\d+) restores \((\d+) at exits, (\d+) at timer/.exec(t.note ?? '');
      assert.ok(n, `${id}: no torture count (${t.note})`);
      if (!seen.has(t.note!)) restores += Number(n[1]);
      seen.add(t.note!);
      assert.equal(Number(n[1]), Number(n[2]) + Number(n[3]));
    }
    assert.ok(restores > 0, 'no save/restore happened');
  });
});
