// svmconf repro (docs/repro.md): the bundle's text from hand-made inputs (report/repro.ts), its
// script run against a stand-in VMM, and — where the peers are here — bundles for qemu-tcg,
// bochs-phenom and kvm-tcg whose scripts, copied alone into a fresh folder and run with a PATH
// that holds only the tools they name (no node, no svmconf), say "reproduced". A peer that is
// missing skips its bundle with the reason printed, never passes it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { execa } from 'execa';
import type { BackendInfo, CaseOutcome } from '../core/types.ts';
import { loadTemplates, ROOT } from '../generator/index.ts';
import { compareCase, maskFromResults } from '../report/compare.ts';
import type { Deviation } from '../report/deviations.ts';
import { loadFindings } from '../report/findings.ts';
import {
  bundleName, citations, defaultVmmTools, fieldMarks, markdownSection, renderChecks, renderExpected, renderManifest, renderObserved,
  renderReport, renderScript, sanitizeCaseId, scriptName, shJoin, shq, summaryLine, wrap, type ReproInput, type ReproRun,
} from '../report/repro.ts';
import { kvmHelperArgs } from '../runner/backends/kvm.ts';
import { stopTcgHost } from '../runner/backends/kvm-tcg.ts';
import { peerLaunch } from '../runner/peers/launch.ts';
import { tcgHostArgs } from '../runner/tcghost/host.ts';
import { BackendUnavailableError, UsageError } from '../suite/errors.ts';
import { debPin, makeRepro, runKind } from '../suite/repro.ts';
import { loadRegistry } from '../suite/select.ts';

const ICEBP = 'l1.icebp/prefix=none';
/** What the model and QEMU 7.2.22 TCG give for it (QEMU raises #UD for ICEBP: registry qemu-icebp-ud). */
const MODEL_ICEBP = '0100000000000000000000000000000008000000000000000200000000000000f00fffff000000000100000000000000';
const QEMU_ICEBP = '0600000000000000ffffffffffffffff0800000000000000020000000000000000000000000000000100000000000000';

const MODEL_INFO: BackendInfo = {
  name: 'model', kind: 'model', available: true, reason: '', version: 'svmconf model (profile amd-19h)',
  features: { svm: { present: true, absent: true, reason: '' }, npt: { present: true, absent: true, reason: '' }, nrips: { present: true, absent: true, reason: '' } },
};
const QEMU_INFO: BackendInfo = {
  ...MODEL_INFO, name: 'qemu-tcg', kind: 'emulator', version: 'QEMU 7.2.22',
  packages: { 'qemu-system-x86': '1:7.2+dfsg-7+deb12u18+b3', 'qemu-system-data': '1:7.2+dfsg-7+deb12u18' },
};

const QEMU_RUN: ReproRun = { kind: 'qemu', args: ['-accel', 'tcg', '-kernel', 'kernel.elf', '-append', 'start=0 end=1'] };

/** A ReproInput for the ICEBP case from the real template and registry, the records given. */
async function icebpInput(o: { observed?: string; registry?: boolean; status?: 'OK' | 'CRASH' | 'TIMEOUT'; run?: ReproRun } = {}): Promise<ReproInput> {
  const t = (await loadTemplates()).find((x) => x.id === 'l1.icebp')!;
  const deviations = o.registry === false ? [] : await loadRegistry();
  const status = o.status ?? 'OK';
  const observed = status === 'OK' ? { status, record: o.observed ?? QEMU_ICEBP } : { status, reason: 'no valid protocol line for 30 s' };
  const outcome: CaseOutcome = { id: ICEBP, template: t.id, params: { prefix: 'none' }, results: { model: { status: 'OK', record: MODEL_ICEBP }, 'qemu-tcg': observed } };
  const comparison = compareCase(outcome, t.record, { backends: ['model', 'qemu-tcg'], deviations, versions: { 'qemu-tcg': 'QEMU 7.2.22' }, definedMask: maskFromResults });
  const ids = new Set(comparison.deviations.map((d) => d.id));
  return {
    case: { id: ICEBP, params: { prefix: 'none' }, template: { id: t.id, title: t.title, checks: t.checks, displayPath: t.displayPath, record: t.record } },
    backend: QEMU_INFO, reference: MODEL_INFO, component: 'QEMU 7.2.22 TCG',
    observed, expected: outcome.results.model, comparison,
    entries: deviations.filter((d: Deviation) => ids.has(d.id)), findings: [],
    commit: '0123456789abcdef0123456789abcdef01234567', source: 'a hand-made run', docSections: [],
    run: o.run ?? QEMU_RUN, timeoutSeconds: 20,
  };
}

/** One protocol line with its CRC (docs/protocol.md). */
const protocolLine = (text: string): string => `${text} ${crc32(Buffer.from(text, 'latin1')).toString(16).padStart(8, '0')}`;

/** Write the script and observed.record into a fresh folder, with a stand-in QEMU printing `serial`; run it. */
async function runScript(x: ReproInput, serial: string, observed: string): Promise<{ code: number; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'svmconf-repro-script-'));
  try {
    await writeFile(join(dir, 'run.sh'), renderScript(x));
    await writeFile(join(dir, 'observed.record'), observed ? `${observed}\n` : '');
    await writeFile(join(dir, 'serial.txt'), serial);
    const fake = join(dir, 'fake-qemu');
    await writeFile(fake, '#!/bin/sh\n[ "$1" = --version ] && { echo "QEMU emulator version 0.0 (stand-in)"; exit 0; }\ncat "$(dirname "$0")/serial.txt"\nexit 1\n');
    await chmod(fake, 0o755);
    const r = await execa('sh', [join(dir, 'run.sh')], { reject: false, env: { QEMU: fake }, all: true });
    return { code: r.exitCode ?? -1, out: String(r.all ?? '') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('repro: names, quoting, citations', () => {
  it('turns a case id into a folder name', () => {
    assert.equal(sanitizeCaseId('svm.inject.softint/vec=0x20,nrips=on'), 'svm.inject.softint_vec=0x20_nrips=on');
    assert.equal(bundleName(ICEBP, 'qemu-tcg@11.1'), 'l1.icebp_prefix=none-qemu-tcg@11.1');
    assert.equal(scriptName('bochs-phenom'), 'run-bochs-phenom.sh');
  });

  it('quotes a shell word only when it must', () => {
    assert.equal(shq('kernel.elf'), 'kernel.elf');
    assert.equal(shq('start=0 end=1'), "'start=0 end=1'");
    assert.equal(shq("it's"), "'it'\\''s'");
    assert.equal(shq(''), "''");
  });

  it("finds the manual's sections and the repository's rules a checks text cites", async () => {
    const t = (await loadTemplates()).find((x) => x.id === 'svm.inject.softint')!;
    const c = citations(t.checks);
    assert.deepEqual(c.manual, ['APM vol. 2 15.20', 'APM vol. 3, VMRUN']);
    assert.deepEqual(c.docs, ['docs/svm-rules.md "Injection: return address and next_rip"']);
    assert.deepEqual(citations('x (APM vol. 3, INT1; APM vol. 2 13.1.3). y').manual, ['APM vol. 3, INT1', 'APM vol. 2 13.1.3']);
  });

  it('takes one section of a Markdown file, to the next heading of its level', () => {
    const md = '# A\n\n## B\nb text\n### B1\nsub\n## C\nc text\n';
    assert.equal(markdownSection(md, 'B'), '## B\nb text\n### B1\nsub');
    assert.equal(markdownSection(md, 'C'), '## C\nc text');
    assert.equal(markdownSection(md, 'D'), undefined);
  });

  it("reads a .deb's base name as a package pin, and knows which columns get a script", () => {
    assert.equal(debPin('linux-image-6.1.0-57-amd64_6.1.192-3_amd64'), 'linux-image-6.1.0-57-amd64=6.1.192-3');
    assert.equal(debPin('busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64'), 'busybox-static=1:1.35.0-4+deb12u1+b1');
    assert.deepEqual(['qemu-tcg', 'qemu-tcg@11.1', 'qemu-kvm', 'bochs-phenom@3.1', 'kvm', 'kvm-tcg@7.3', 'model', 'console'].map(runKind),
      ['qemu', 'qemu', 'qemu', 'bochs', 'kvm', 'kvm-tcg', undefined, undefined]);
  });

  it('wraps text on word boundaries', () => {
    assert.deepEqual(wrap('aaa bbb ccc', 9, ''), ['aaa bbb', 'ccc']);
    assert.deepEqual(wrap('one\n\ntwo', 20, '> '), ['> one', '', '> two']);
  });
});

describe('repro: the text of a bundle', () => {
  it('marks the fields that differ, with the registry entry that covers them', async () => {
    const x = await icebpInput();
    assert.deepEqual(fieldMarks(x.case.template.record, x.comparison.diffs, 'qemu-tcg').filter((m) => m.state !== 'same'),
      ['vector', 'frame_rip', 'dr6'].map((field) => ({ field, state: 'differs', entry: 'qemu-icebp-ud' })));
    const o = renderObserved(x);
    assert.match(o, /^~ vector {8}0x6 {17}#UD \(6\)$/m);
    assert.match(o, /^~ frame_rip {5}0xffffffffffffffff {2}-0x1$/m);
    assert.match(o, /^ {2}hits/m);
    assert.match(o, /vector: differs; known deviation qemu-icebp-ud .*; model gives #DB \(1\)/);
    assert.match(o, /verdict against model: known deviation \(qemu-icebp-ud\)/);
  });

  it('marks a difference no entry covers as a divergence', async () => {
    const x = await icebpInput({ registry: false });
    assert.match(renderObserved(x), /^\* vector/m);
    assert.match(renderObserved(x), /differs in a defined bit; no registry entry covers it \(a divergence\)/);
    assert.equal(summaryLine(x), 'ICEBP (INT1, F1) in L1: vector #UD (6), expected #DB (1); frame_rip -0x1, expected +0x0 (+1 more fields)');
  });

  it("decodes the expected record with each field's defined bits", async () => {
    const x = await icebpInput();
    const e = renderExpected(x);
    assert.match(e, /^ {2}vector {8}0x1 {17}#DB \(1\) {2}defined: all bits$/m);
    assert.match(e, /defined-bits mask: none given/);
    // a mask that leaves dr6 undefined and keeps one bit of frame_rflags
    const mask = `${'ff'.repeat(24)}${'0100000000000000'}${'00'.repeat(8)}${'ff'.repeat(8)}`;
    const m = renderExpected({ ...x, expected: { status: 'OK', record: MODEL_ICEBP, mask } });
    assert.match(m, /^ {2}dr6 .* defined: none \(not compared\)$/m);
    assert.match(m, /^ {2}frame_rflags .* defined: 0x1$/m);
    assert.match(m, new RegExp(`defined-bits mask ${mask}`));
  });

  it("writes the report with the entry's summary as Subject, the manual's sections and the versions", async () => {
    const x = await icebpInput();
    const r = renderReport(x, [{ name: 'kernel.elf', bytes: 100_000, sha256: 'a'.repeat(64), what: 'k' }]);
    assert.equal(r.split('\n')[0], 'Subject: [svmconf] QEMU 7.2.22 TCG: QEMU 7.2 TCG raises #UD for ICEBP (F1) instead of a trap-like #DB; the frame points at the ICEBP');
    for (const want of ['What the guest does', 'Manual: APM vol. 3, INT1; APM vol. 2 13.1.3.', 'Registry qemu-icebp-ud: APM vol. 3, INT1', 'Known as qemu-icebp-ud',
      'qemu/qemu target/i386/tcg/translate.c:7205', 'sh run-qemu-tcg.sh', 'qemu-system-x86=1:7.2+dfsg-7+deb12u18+b3', 'svmconf commit 0123456789abcdef']) {
      assert.ok(r.includes(want), `report.txt has ${want}`);
    }
    assert.match(r, /^ {2}~ vector/m);
  });

  it("takes the finding's title for the Subject when one finding covers every difference, and names it with its upstream", async () => {
    const x = await icebpInput();
    const findings = await loadFindings(join(ROOT, 'expected', 'findings.yaml'), await loadRegistry(), 'expected/findings.yaml', { complete: false });
    const f = findings.filter((k) => x.entries.some((e) => e.finding === k.id));
    assert.deepEqual(f.map((k) => k.id), ['qemu-icebp-decoded-as-ud']);
    const r = renderReport({ ...x, findings: f }, []);
    assert.equal(r.split('\n')[0], `Subject: [svmconf] QEMU 7.2.22 TCG: ${f[0]!.title}`);
    assert.match(r.replace(/\s+/g, ' '), /Finding qemu-icebp-decoded-as-ud \(docs\/findings\.md#qemu-icebp-decoded-as-ud\): .* fixed upstream\. Upstream: https:\/\/lore\.kernel\.org\//);
  });

  it('says what happened when the backend gave no record', async () => {
    const x = await icebpInput({ status: 'TIMEOUT' });
    assert.match(renderObserved(x), /status TIMEOUT — no valid protocol line for 30 s/);
    assert.equal(summaryLine(x), 'ICEBP (INT1, F1) in L1: TIMEOUT (no valid protocol line for 30 s)');
  });

  it("lists the checks, their sections, the parameters and the record in checks.md; every file in MANIFEST", async () => {
    const x = await icebpInput();
    const c = renderChecks({ ...x, docSections: [{ ref: 'docs/svm-rules.md "X"', text: '## X\nthe rule' }] });
    assert.match(c, /^> ICEBP raises #DB as a trap/m);
    assert.match(c, /^- APM vol\. 2 13\.1\.3$/m);
    assert.match(c, /^- qemu-icebp-ud: APM vol\. 3, INT1 \(ICEBP\)/m);
    assert.match(c, /^### docs\/svm-rules\.md "X"\n\nthe rule$/m);
    assert.match(c, /^\| prefix \| none \|$/m);
    assert.match(c, /^\| dr6 \| u64 \| 32 \|/m);
    const m = renderManifest(x, [{ name: 'a', bytes: 3, sha256: 'b'.repeat(64), what: 'the a' }]);
    assert.match(m, /^a +3 {2}b{64} {2}the a$/m);
  });
});

describe("repro: the script's comparison (a stand-in VMM, no peer)", function () {
  this.timeout(30_000);
  const caseLine = (status: string, record: string): string => `noise\r\n${protocolLine('SVMCONF BEGIN l1.icebp#0 1 0')}\r\nfirmware SVMCONF ${protocolLine(`SVMCONF CASE ${ICEBP} ${status} ${record}`).slice('SVMCONF '.length)}\r\n${protocolLine('SVMCONF END')}\r\n`;

  it('says "reproduced" when the record is the observed one', async () => {
    const r = await runScript(await icebpInput(), caseLine('OK', QEMU_ICEBP), QEMU_ICEBP);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^reproduced: the record equals the observed one$/m);
    assert.doesNotMatch(r.out, /warning/);
  });

  it('names the fields that differ, in hex, and exits 1', async () => {
    const r = await runScript(await icebpInput(), caseLine('OK', MODEL_ICEBP), QEMU_ICEBP);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}vector {15}observed 0x6, now 0x1$/m);
    assert.match(r.out, /^ {2}frame_rip {12}observed 0xffffffffffffffff, now 0x0$/m);
    assert.match(r.out, /^ {2}dr6 {18}observed 0x0, now 0xffff0ff0$/m);
    assert.doesNotMatch(r.out, /frame_cs|hits/);
  });

  it("warns when the line's CRC does not match its text", async () => {
    const r = await runScript(await icebpInput(), `SVMCONF CASE ${ICEBP} OK ${QEMU_ICEBP} 00000000\n`, QEMU_ICEBP);
    assert.match(r.out, /warning: the line's CRC is 00000000, its text gives [0-9a-f]{8}/);
    // the record itself is still the observed one
    assert.match(r.out, /^reproduced/m);
  });

  it('reproduces an observed TIMEOUT by the missing line, and refuses a missing line when a record was observed', async () => {
    const t = await runScript(await icebpInput({ status: 'TIMEOUT' }), 'nothing\n', '');
    assert.equal(t.code, 0, t.out);
    assert.match(t.out, /reproduced: no CASE line for l1\.icebp\/prefix=none, as observed \(TIMEOUT\)/);
    const ok = await runScript(await icebpInput(), 'nothing\n', QEMU_ICEBP);
    assert.equal(ok.code, 1, ok.out);
    assert.match(ok.out, /not reproduced: no CASE line now, where the case gave OK/);
  });

  it('exits 2 naming the VMM when it is not there', async () => {
    const x = await icebpInput();
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-repro-script-'));
    await writeFile(join(dir, 'run.sh'), renderScript(x));
    const r = await execa('sh', [join(dir, 'run.sh')], { reject: false, env: { QEMU: '/nonexistent/qemu' }, all: true });
    await rm(dir, { recursive: true, force: true });
    assert.equal(r.exitCode, 2);
    assert.match(String(r.all), /cannot run: \/nonexistent\/qemu not found \(QEMU=<command> names another\)/);
  });
});

describe('repro: the command lines the backends expose, and the scripts of kvm, kvm-tcg and a pinned Bochs', function () {
  this.timeout(30_000);
  it('gives the helper and the TCG host the lines their boots use', () => {
    assert.deepEqual(kvmHelperArgs({ elf: 'k.elf', start: 0, end: 1, memoryMib: 128 }), ['--kernel', 'k.elf', '--cmdline', 'start=0 end=1', '--mem-mib', '128', '--cpuid', '-']);
    assert.deepEqual(kvmHelperArgs({ elf: 'k.elf', start: 3, memoryMib: 64, torture: { timerUs: 5000, every: 20, control: true } }),
      ['--kernel', 'k.elf', '--cmdline', 'start=3', '--mem-mib', '64', '--cpuid', '-', '--torture', '--torture-timer-us', '5000', '--torture-every', '20', '--torture-control']);
    const t = tcgHostArgs({ vmlinuz: 'vmlinuz', initrd: 'initrd.gz', spool: 'spool', consoleLog: 'console.log' });
    assert.equal(shJoin(t), "-accel tcg -cpu max -smp 1 -m 1024 -nodefaults -display none -no-reboot -chardev file,id=con,path=console.log -serial chardev:con -kernel vmlinuz -initrd initrd.gz -append 'console=ttyS0 quiet panic=-1' -virtfs local,path=spool,mount_tag=spool,security_model=none");
  });

  it('kvm: builds the helper from native/ unless SVMCONF_KVM names one, and without cpuid.txt lets it ask KVM', async () => {
    const x = await icebpInput({ run: { kind: 'kvm', helperArgs: kvmHelperArgs({ elf: 'kernel.elf', start: 0, end: 1, memoryMib: 128 }) } });
    const script = renderScript(x);
    assert.match(script, /\$\{CC:-cc\} -O2 -std=c11 -D_GNU_SOURCE -I native -o svmconf-kvm native\/\*\.c/);
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-repro-kvm-'));
    try {
      await writeFile(join(dir, 'run.sh'), script);
      await writeFile(join(dir, 'observed.record'), `${QEMU_ICEBP}\n`);
      // a stand-in helper: its arguments to vmm.log (stderr), the case's line to COM1 (stdout)
      await writeFile(join(dir, 'helper'), `#!/bin/sh\necho "args: $*" >&2\nprintf '%s\\n' '${protocolLine(`SVMCONF CASE ${ICEBP} OK ${QEMU_ICEBP}`)}'\n`);
      await chmod(join(dir, 'helper'), 0o755);
      const r = await execa('sh', ['run.sh'], { cwd: dir, reject: false, env: { SVMCONF_KVM: './helper' }, all: true });
      assert.equal(r.exitCode, 0, String(r.all));
      assert.match(String(r.all), /^reproduced/m);
      assert.equal((await readFile(join(dir, 'vmm.log'), 'utf8')).trim(), "args: --kernel kernel.elf --cmdline start=0 end=1 --mem-mib 128");
      await writeFile(join(dir, 'cpuid.txt'), '0x0 0x0 0x0 0x1 0x2 0x3 0x4\n');
      await execa('sh', ['run.sh'], { cwd: dir, reject: false, env: { SVMCONF_KVM: './helper' } });
      assert.match(await readFile(join(dir, 'vmm.log'), 'utf8'), /--mem-mib 128 --cpuid -$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('kvm-tcg: puts the request into the spool before QEMU starts and stops the guest when it has its status', async () => {
    const x = await icebpInput({ run: {
      kind: 'kvm-tcg', qemuArgs: tcgHostArgs({ vmlinuz: 'vmlinuz', initrd: 'initrd.gz', spool: 'spool', consoleLog: 'console.log' }),
      helperArgs: kvmHelperArgs({ elf: '/spool/0.req/kernel.elf', start: 0, end: 1, memoryMib: 128 }), qemuVersion: 'QEMU 7.2.22',
      kernel: { release: '6.1.0-57-amd64', debs: ['linux-image-6.1.0-57-amd64=6.1.192-3', 'busybox-static=1:1.35.0-4+deb12u1+b1'] },
    } });
    const script = renderScript(x);
    assert.match(script, /^printf '%s\\n' --kernel \/spool\/0\.req\/kernel\.elf --cmdline 'start=0 end=1' --mem-mib 128 --cpuid - > spool\/0\.req\/args$/m);
    assert.match(script, /apt-get download linux-image-6\.1\.0-57-amd64=6\.1\.192-3/);
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-repro-tcg-'));
    try {
      await writeFile(join(dir, 'run.sh'), script);
      await writeFile(join(dir, 'observed.record'), `${QEMU_ICEBP}\n`);
      await writeFile(join(dir, 'kernel.elf'), 'k');
      await writeFile(join(dir, 'cpuid.txt'), 'c\n');
      // a stand-in TCG host: serves the one request as init.sh's agent would, then waits for stop
      await writeFile(join(dir, 'qemu'), `#!/bin/sh\n[ "$1" = --version ] && { echo stand-in; exit 0; }\nr=spool/0.req\n[ -f $r/args ] && [ -f $r/stdin ] && [ -f $r/kernel.elf ] || exit 9\nprintf '%s\\n' '${protocolLine(`SVMCONF CASE ${ICEBP} OK ${QEMU_ICEBP}`)}' > $r/out\n: > $r/err\necho 0 > $r/rc\nwhile [ ! -e spool/stop ]; do sleep 0.1; done\n`);
      await chmod(join(dir, 'qemu'), 0o755);
      const r = await execa('sh', ['run.sh'], { cwd: dir, reject: false, env: { QEMU: './qemu', TIMEOUT: '20' }, all: true });
      assert.equal(r.exitCode, 0, String(r.all));
      assert.match(String(r.all), /^reproduced: the record equals the observed one$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("bochs with PEER_ROOT: the root's loader and the root's BIOS files in the bochsrc", async () => {
    const peer = peerLaunch({ name: 'bochs@3.1', kind: 'bochs', short: '3.1', suite: 'sid', packages: [] }, '${PEER_ROOT}');
    const x = await icebpInput({ run: { kind: 'bochs', peer: { pin: 'bochs@3.1', packages: { bochs: '3.1+dfsg-1' }, file: peer.file, args: peer.args, env: peer.env, builtAt: 'build/peers/sid' } } });
    const script = renderScript(x);
    assert.match(script, /^ {2}BOCHS="\$\{PEER_ROOT\}\/usr\/lib\/x86_64-linux-gnu\/ld-linux-x86-64\.so\.2 --inhibit-cache --library-path .* \$\{PEER_ROOT\}\/usr\/bin\/bochs-bin -q"$/m);
    assert.match(script, /^ {2}BXSHARE="\$\{PEER_ROOT\}\/usr\/share\/bochs"; export BXSHARE$/m);
    assert.match(script, /sed "s#file=\/usr\/share\/#file=\$PEER_ROOT\/usr\/share\/#" bochsrc > bochsrc\.run/);
    assert.match(script, /# Observed with the pinned peer bochs@3\.1: bochs=3\.1\+dfsg-1\./);
  });
});

/** A folder of symlinks to exactly `tools` (each found on this PATH): the PATH a bundle's script gets. */
async function toolPath(tools: readonly string[]): Promise<string> {
  const bin = await mkdtemp(join(tmpdir(), 'svmconf-repro-bin-'));
  for (const t of new Set(tools)) {
    // the file on PATH (`command -v` names a shell builtin such as kill or true by its name alone)
    const at = (process.env.PATH ?? '').split(':').map((d) => join(d, t)).find((p) => existsSync(p));
    if (at) await symlink(at, join(bin, t));
  }
  return bin;
}

/** The tools a bundle's script names (its NEEDS line) and the VMM it runs by default. */
function scriptNeeds(script: string, backend: string): string[] {
  const needs = /^NEEDS='([^']*)'$/m.exec(script)?.[1]?.split(' ') ?? [];
  return [...needs, ...defaultVmmTools({ kind: runKind(backend)! } as ReproRun)];
}

describe('repro: bundles on the peers, run from their folder alone', function () {
  this.timeout(180_000);
  let work = '';
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'svmconf-repro-'));
  });
  after(async () => {
    await stopTcgHost();
    await rm(work, { recursive: true, force: true });
  });

  const bundles: Array<{ backend: string; caseId: string; files: string[]; why: string }> = [
    { backend: 'qemu-tcg', caseId: ICEBP, files: [], why: 'QEMU 7.2 raises #UD for ICEBP (qemu-icebp-ud)' },
    { backend: 'bochs-phenom', caseId: 'svm.inject.invalid/type=3,vec=0x0f', files: ['kernel.bin', 'floppy.img', 'bochsrc', 'dbg.rc'], why: 'Bochs delivers TYPE 3 vector 15' },
    { backend: 'kvm-tcg', caseId: ICEBP, files: ['vmlinuz', 'initrd.gz', 'cpuid.txt'], why: 'differs from the model: #UD, RF set in the frame' },
  ];
  for (const b of bundles) {
    it(`${b.backend}: ${b.caseId} (${b.why}) — the script alone says "reproduced"`, async function () {
      const out = join(work, bundleName(b.caseId, b.backend));
      let r;
      try {
        r = await makeRepro({ caseId: b.caseId, backend: b.backend, out, templates: [], timeout: 30, scriptTimeout: 90 });
      } catch (e) {
        if (e instanceof BackendUnavailableError || /TCG host is not built|not installed/.test((e as Error).message)) {
          console.log(`      skipped: ${(e as Error).message}`);
          this.skip();
        }
        throw e;
      }
      const names = await readdir(out);
      for (const f of ['MANIFEST', 'report.txt', 'checks.md', 'observed.txt', 'expected.txt', 'observed.record', 'expected.record', 'kernel.elf', 'results.json', scriptName(b.backend), ...b.files]) {
        assert.ok(names.includes(f), `${f} in the bundle (${names.join(' ')})`);
      }
      assert.equal(r.observed.status, 'OK');
      const manifest = await readFile(join(out, 'MANIFEST'), 'utf8');
      for (const f of names.filter((n) => n !== 'MANIFEST')) assert.match(manifest, new RegExp(`^${f.replace(/[.@]/g, '\\$&')} `, 'm'));
      assert.match(await readFile(join(out, 'report.txt'), 'utf8'), /^Subject: \[svmconf\] \S/);
      assert.equal((await readFile(join(out, 'observed.record'), 'utf8')).trim(), r.observed.record);
      // the parent holds the bundle and nothing half-written
      assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('.')), []);

      // alone in a fresh folder, with only the tools the script names
      const alone = join(await mkdtemp(join(tmpdir(), 'svmconf-repro-alone-')), 'bundle');
      await cp(out, alone, { recursive: true });
      const script = await readFile(join(alone, scriptName(b.backend)), 'utf8');
      const bin = await toolPath(scriptNeeds(script, b.backend));
      try {
        assert.throws(() => execFileSync('/bin/sh', ['-c', 'command -v node || command -v svmconf || exit 1'], { env: { PATH: bin } }), 'no node or svmconf on the PATH');
        const run = await execa('/bin/sh', [join(alone, scriptName(b.backend))], { reject: false, env: { PATH: bin }, extendEnv: false, all: true, cwd: tmpdir() });
        assert.equal(run.exitCode, 0, String(run.all));
        assert.match(String(run.all), /^reproduced: the record equals the observed one$/m);
        assert.ok(existsSync(join(alone, 'serial.log')));
      } finally {
        await rm(bin, { recursive: true, force: true });
        await rm(join(alone, '..'), { recursive: true, force: true });
      }
    });
  }

  it('takes the observed record from a results.json, refuses a folder that is not empty, replaces it with force', async function () {
    const first = join(work, bundleName(ICEBP, 'qemu-tcg'));
    if (!existsSync(join(first, 'results.json'))) {
      console.log('      skipped: no qemu-tcg bundle was written above');
      this.skip();
    }
    const out = join(work, 'from-results');
    const r = await makeRepro({ caseId: ICEBP, backend: 'qemu-tcg', out, results: join(first, 'results.json'), templates: [], timeout: 30 });
    assert.equal(r.observed.record, (await readFile(join(first, 'observed.record'), 'utf8')).trim());
    assert.match(await readFile(join(out, 'report.txt'), 'utf8'), /Source of the observed record: .*from-results|Source of the observed record: .*results\.json/);
    await assert.rejects(makeRepro({ caseId: ICEBP, backend: 'qemu-tcg', out, results: join(first, 'results.json'), templates: [], timeout: 30 }), (e: Error) => e instanceof UsageError && /is not empty \(give --force/.test(e.message));
    await writeFile(join(out, 'stale'), 'x');
    await makeRepro({ caseId: ICEBP, backend: 'qemu-tcg', out, results: join(first, 'results.json'), templates: [], timeout: 30, force: true });
    assert.ok(!existsSync(join(out, 'stale')), 'the old folder is gone');
    await assert.rejects(makeRepro({ caseId: ICEBP, backend: 'bochs-ryzen', out: join(work, 'x'), results: join(first, 'results.json'), templates: [], timeout: 30 }), /has no result of bochs-ryzen/);
    await assert.rejects(makeRepro({ caseId: 'l1.icebp/*', backend: 'qemu-tcg', out: join(work, 'y'), templates: [], timeout: 30 }), /takes one case id/);
    await assert.rejects(makeRepro({ caseId: ICEBP, backend: 'model', out: join(work, 'z'), templates: [], timeout: 30 }), /model is not one/);
    await mkdir(join(work, 'empty'));
    assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('.')), []);
  });
});
