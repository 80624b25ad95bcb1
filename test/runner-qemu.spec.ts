import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kernel } from '../core/types.ts';
import {
  classifyExit,
  cpuArg,
  createQemuBackend,
  qemuArgs,
  qemuErrors,
  QEMU_NOT_FOUND,
  vmmErrorDetail,
  type ExecFn,
} from '../runner/backends/qemu.ts';
import type { HostFs } from '../runner/probe.ts';

// What QEMU 7.2 with this machine's paravirtual KVM printed for an INT3 in long mode (abridged).
const KVM_INT3_STDERR = `qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]
KVM internal error. Suberror: 1
extra data[0]: 0x0000000000000001
extra data[1]: 0xfeeb0b0f02ebcc0f
emulation failure
RAX=0000000000000010 RBX=0000000000000000 RCX=0000000000000000 RDX=000000000010037a
RIP=00000000001001bd RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
Code=00 00 e8 f4 00 00 00 <cc> eb 02 0f 0b eb fe
`;

describe('runner/backends/qemu: arguments', () => {
  it('maps the cpu config to -cpu features, with enforce when one is required', () => {
    assert.equal(cpuArg('tcg', 'qemu64', {}), 'qemu64,+svm,+npt,enforce');
    assert.equal(cpuArg('tcg', 'qemu64', { npt: false }), 'qemu64,+svm,-npt,enforce');
    assert.equal(cpuArg('tcg', 'qemu64', { nrips: true }), 'qemu64,+svm,+npt,+nrip-save,enforce');
    assert.equal(cpuArg('kvm', 'host,-arch-capabilities', {}), 'host,-arch-capabilities');
    assert.equal(cpuArg('kvm', 'host,-arch-capabilities', { nrips: false }), 'host,-arch-capabilities,-nrip-save');
    assert.equal(cpuArg('kvm', 'host', { svm: true, nrips: false }), 'host,+svm,-nrip-save,enforce');
    assert.equal(cpuArg('tcg', 'EPYC', {}, false), 'EPYC,+svm,+npt');
  });

  it('builds the QEMU command line with start= and end=', () => {
    const a = qemuArgs({ accel: 'tcg', cpuModel: 'qemu64', cpu: {}, elf: '/k.elf', start: 3, memoryMib: 128 });
    for (const f of ['-nodefaults', '-no-reboot', 'isa-debug-exit,iobase=0xf4,iosize=4']) assert.ok(a.includes(f), f);
    assert.equal(a[a.indexOf('-serial') + 1], 'stdio');
    assert.equal(a[a.indexOf('-kernel') + 1], '/k.elf');
    assert.equal(a[a.indexOf('-append') + 1], 'start=3');
    const b = qemuArgs({ accel: 'kvm', cpuModel: 'host', cpu: {}, elf: '/k.elf', start: 0, end: 2, memoryMib: 64 });
    assert.equal(b[b.indexOf('-append') + 1], 'start=0 end=2');
    assert.equal(b[b.indexOf('-accel') + 1], 'kvm');
    assert.ok(!b.includes('-bios'), 'no -bios unless asked: QEMU default firmware');
    const c = qemuArgs({ accel: 'kvm', cpuModel: 'host', cpu: {}, elf: '/k.elf', start: 0, memoryMib: 64, bios: 'qboot.rom' });
    assert.equal(c[c.indexOf('-bios') + 1], 'qboot.rom');
  });
});

describe('runner/backends/qemu: how a boot ended', () => {
  const base = { stderr: '', idleTimeoutMs: 5000, sawOutput: true };

  it('reads the debug-exit value from an odd exit status', () => {
    assert.deepEqual(classifyExit({ ...base, exitCode: 1 }), { end: 'exited', detail: 'debug-exit value 0 (exit status 1)' });
    assert.equal(classifyExit({ ...base, exitCode: 7 }).detail, 'debug-exit value 3 (exit status 7)');
  });

  it('takes status 0 under -no-reboot as a triple fault', () => {
    assert.deepEqual(classifyExit({ ...base, exitCode: 0 }), { end: 'crashed', detail: 'triple fault (reset)' });
  });

  it('knows a timeout from its own timer, not from QEMU exiting 0 on SIGTERM', () => {
    const r = classifyExit({ ...base, exitCode: 0, killedFor: 'timeout', stderr: 'qemu-system-x86_64: terminating on signal 15 from pid 1' });
    assert.equal(r.end, 'timeout');
    assert.match(r.detail, /5 s/);
  });

  it('reports a KVM internal error with its suberror and RIP', () => {
    const r = classifyExit({ ...base, killedFor: 'vmm-error', signal: 'SIGTERM', stderr: KVM_INT3_STDERR });
    assert.equal(r.end, 'crashed');
    assert.equal(r.detail, 'KVM internal error. Suberror: 1 (emulation failure) at RIP=00000000001001bd');
    assert.match(vmmErrorDetail('KVM internal error. Suberror: 3\nEAX=1 EIP=00101abc EFL=2\n'), /Suberror: 3 at EIP=00101abc/);
  });

  it('tells a launch failure (status 1 with an error) from a debug-exit', () => {
    const stderr =
      "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.8000000AH:EDX.nrip-save [bit 3]\n" +
      "qemu-system-x86_64: TCG doesn't support requested features\n";
    assert.deepEqual(qemuErrors(stderr), ["TCG doesn't support requested features"]);
    const r = classifyExit({ ...base, sawOutput: false, exitCode: 1, stderr });
    assert.equal(r.end, 'crashed');
    assert.match(r.detail, /^failed to launch \(exit status 1\): TCG doesn't support requested features \(CPUID\.8000000AH:EDX\.nrip-save\)/);
  });

  it('says what is missing when QEMU cannot be started, and reports aborts by signal', () => {
    assert.equal(classifyExit({ ...base, spawnError: 'ENOENT' }).detail, `failed to launch: ${QEMU_NOT_FOUND}`);
    const r = classifyExit({ ...base, exitCode: 134, stderr: 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nAssertion failed' });
    assert.equal(r.end, 'crashed');
    assert.match(r.detail, /exit status 134.*MSR 0x10a/);
  });
});

/** A stand-in for qemu-system-x86_64: a Node script that plays the "kernel" file as a script. */
const FAKE_QEMU = `#!/usr/bin/env node
const fs = require('node:fs');
const args = process.argv.slice(2);
const script = JSON.parse(fs.readFileSync(args[args.indexOf('-kernel') + 1], 'utf8'));
const append = args[args.indexOf('-append') + 1];
if (script.ignoreTerm) process.on('SIGTERM', () => {});
process.stdout.write(script.out.replace('<APPEND>', append));
process.stderr.write(script.err || '');
if (script.exit !== undefined) process.stdout.end(() => process.exit(script.exit));
else setInterval(() => {}, 1000);
`;

describe('runner/backends/qemu: boots (with a stand-in QEMU)', function () {
  let dir = '';
  let bin = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svmconf-fakeqemu-'));
    bin = join(dir, 'fake-qemu');
    await writeFile(bin, FAKE_QEMU);
    await chmod(bin, 0o755);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const boot = async (name: string, script: object, idleTimeoutMs = 5000, lines: string[] = []) => {
    const elf = join(dir, `${name}.json`);
    await writeFile(elf, JSON.stringify(script));
    const kernel = { id: 'k#0', cases: [], cpu: {}, elf, bin: '', map: '' } as Kernel;
    const b = createQemuBackend({ accel: 'tcg', binary: bin, killGraceMs: 300 });
    return b.boot({ kernel, start: 2, cpu: {}, idleTimeoutMs, onLine: (l) => lines.push(l) });
  };

  it('streams lines with CR stripped, keeps a cut-off last line, and exits by debug-exit', async () => {
    const seen: string[] = [];
    const r = await boot('ok', { out: 'noise\r\nSVMCONF <APPEND>\r\nlast', exit: 3 }, 5000, seen);
    assert.equal(r.end, 'exited');
    assert.equal(r.detail, 'debug-exit value 1 (exit status 3)');
    assert.deepEqual(r.lines, ['noise', 'SVMCONF start=2', 'last']);
    assert.deepEqual(seen, r.lines);
  });

  it('kills a silent guest after the idle timeout', async () => {
    // the idle timer runs from the spawn: it must outlast the stand-in's start under load (a
    // node process can take a second to print on a busy 2-core machine)
    const r = await boot('hang', { out: 'SVMCONF BEGIN\n' }, 3000);
    assert.equal(r.end, 'timeout');
    assert.deepEqual(r.lines, ['SVMCONF BEGIN']);
  });

  it('kills QEMU paused after a KVM internal error, SIGKILL if SIGTERM is ignored', async () => {
    const r = await boot('kvmerr', { out: 'SVMCONF BEGIN\n', err: KVM_INT3_STDERR, ignoreTerm: true }, 60_000);
    assert.equal(r.end, 'crashed');
    assert.match(r.detail, /Suberror: 1 \(emulation failure\) at RIP=00000000001001bd/);
  });

  it('reports a missing binary as a launch failure', async () => {
    const kernel = { id: 'k#0', cases: [], cpu: {}, elf: '/x', bin: '', map: '' } as Kernel;
    const r = await createQemuBackend({ accel: 'tcg', binary: join(dir, 'no-such-qemu') }).boot({ kernel, start: 0, cpu: {}, idleTimeoutMs: 1000 });
    assert.equal(r.end, 'crashed');
    assert.match(r.detail, /failed to launch/);
  });
});

describe('runner/backends/qemu: probe', () => {
  const fs = (files: Record<string, string>, dev = 'ok', onPath = true): HostFs => ({
    readText: async (p) => files[p],
    list: async (p) => (p === '/sys/module' ? Object.keys(files).filter((f) => f.startsWith('/sys/module/')).map((f) => f.split('/')[3]!) : undefined),
    openReadWrite: async () => (dev === 'ok' ? undefined : dev),
    which: async (c) => (onPath ? `/usr/bin/${c}` : undefined),
  });
  /** QEMU 7.2's answers: TCG refuses nrip-save; this fake KVM refuses svm. */
  const exec: ExecFn = async (_file, args) => {
    if (args[0] === '--version') return { exitCode: 0, stdout: 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)\n', stderr: '' };
    const cpu = args[args.indexOf('-cpu') + 1]!;
    const accel = args[args.indexOf('-accel') + 1]!;
    if (accel === 'tcg' && cpu.includes('+nrip-save')) {
      return { exitCode: 1, stdout: '', stderr: "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.8000000AH:EDX.nrip-save [bit 3]\nqemu-system-x86_64: TCG doesn't support requested features\n" };
    }
    if (accel === 'kvm' && cpu.includes('+svm')) {
      return { exitCode: 1, stdout: '', stderr: "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.80000001H:ECX.svm [bit 2]\nqemu-system-x86_64: Host doesn't support requested features\n" };
    }
    return { exitCode: 1, stdout: '', stderr: "qemu: could not open kernel file '/nonexistent/svmconf-cpu-probe': No such file or directory\n" };
  };
  const pvmHost = {
    '/proc/cpuinfo': 'vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nflags\t\t: fpu lm hypervisor\n',
    '/sys/module/kvm/parameters/halt_poll_ns': '200000',
    '/sys/module/kvm_pvm/parameters/force': 'N',
  };

  it('qemu-tcg: SVM and NPT shown, NRIPS hidden only, with the reason', async () => {
    const info = await createQemuBackend({ accel: 'tcg', fs: fs(pvmHost), exec }).probe();
    assert.equal(info.available, true);
    assert.equal(info.version, 'QEMU 7.2.22');
    assert.deepEqual(info.features.svm, { present: true, absent: true, reason: '' });
    assert.deepEqual(info.features.npt, { present: true, absent: true, reason: '' });
    assert.deepEqual(info.features.nrips, { present: false, absent: true, reason: 'QEMU 7.2 TCG does not implement NRIPS (nrip-save is dropped)' });
  });

  it('qemu-kvm on a paravirtual KVM: available, but no SVM, naming kvm_pvm', async () => {
    const info = await createQemuBackend({ accel: 'kvm', fs: fs(pvmHost), exec }).probe();
    assert.equal(info.name, 'qemu-kvm');
    assert.equal(info.available, true);
    assert.equal(info.features.svm.present, false);
    assert.match(info.features.svm.reason, /kvm_pvm/);
    assert.equal(info.features.nrips.absent, true);
  });

  it('qemu-kvm without a usable /dev/kvm, and either backend without QEMU, is unavailable', async () => {
    const noDev = await createQemuBackend({ accel: 'kvm', fs: fs(pvmHost, 'EACCES'), exec }).probe();
    assert.equal(noDev.available, false);
    assert.match(noDev.reason, /\/dev\/kvm is not accessible read-write \(EACCES\)/);
    assert.equal(noDev.features.svm.present, false);
    const noQemu = await createQemuBackend({ accel: 'tcg', fs: fs(pvmHost, 'ok', false), exec }).probe();
    assert.equal(noQemu.available, false);
    assert.equal(noQemu.reason, QEMU_NOT_FOUND);
  });
});
