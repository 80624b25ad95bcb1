// The bootable image's parts, without booting: grub.cfg, the suite loader, the batch kernels'
// return path, and how the console backend turns one boot's lines into results.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { Case, Kernel, Template } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates, makeRenderer, ROOT } from '../generator/index.ts';
import { buildLoader, grubConfig, moduleName } from '../generator/iso.ts';
import { defaultCacheDir } from '../generator/kernel.ts';
import { KERNEL_LOAD_ADDR, SUITE_LOADER_ADDR, SUITE_RETURN_ADDR, ARENA_BASE, ARENA_SIZE } from '../generator/layout.ts';
import { formatBegin, formatCase, formatEnd, formatPanic } from '../runner/protocol.ts';
import { resultsFromConsole, segmentLines, SUITE_BEGIN, SUITE_DONE } from '../runner/backends/console.ts';

/** A kernel with just the fields the console's parser and grub.cfg read. */
function fakeKernel(id: string, template: string, caseIds: string[]): Kernel {
  const t = { id: template } as Template;
  return { id, cpu: {}, elf: `/x/${id}.elf`, bin: '', map: '', cases: caseIds.map((c) => ({ id: c, template: t }) as Case) } as unknown as Kernel;
}

describe('generator/iso: grub.cfg', () => {
  const ks = [fakeKernel('a#0', 'a', ['a/1', 'a/2']), fakeKernel('b@nrips-on#0', 'b', ['b/1']), fakeKernel('b@nrips-off#0', 'b', ['b/2'])];
  const cfg = grubConfig(ks, { timeout: 5 });

  it('puts GRUB on the serial port and the screen', () => {
    assert.match(cfg, /^serial --unit=0 --speed=115200/m);
    assert.match(cfg, /^terminal_output serial console$/m);
    assert.match(cfg, /^terminal_input serial console$/m);
    assert.match(cfg, /^set timeout=5$/m);
  });

  it('boots the full suite by default, every kernel once, in order, then one entry per template', () => {
    const entries = cfg.split(/^menuentry /m).slice(1);
    assert.equal(entries.length, 3);
    assert.match(entries[0]!, /full suite \(3 kernels, 4 cases\)/);
    const mods = (e: string) => [...e.matchAll(/^ {2}module (\S+) (.*)$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(mods(entries[0]!), [0, 1, 2].map((i) => [`/svmconf/${moduleName(i)}`, `${moduleName(i)} start=0`]));
    assert.deepEqual(mods(entries[2]!).map((m) => m[0]), [`/svmconf/${moduleName(1)}`, `/svmconf/${moduleName(2)}`]);
    for (const e of entries) assert.match(e, /^ {2}multiboot \/svmconf\/loader\.elf$/m);
  });

  it('keeps kernel ids (with # and @) out of GRUB words: only in comments', () => {
    for (const l of cfg.split('\n').filter((x) => x.includes('#0'))) assert.match(l, /^\s*#/);
  });
});

describe('generator/iso: the suite loader and the return path', function () {
  this.timeout(60_000);
  const cacheDir = defaultCacheDir(ROOT);

  it('links the loader above the page arena with a multiboot header and the return entry where batches jump', async () => {
    assert.ok(SUITE_LOADER_ADDR >= ARENA_BASE + ARENA_SIZE, 'the loader must not sit in the arena');
    const elf = await buildLoader(await makeRenderer(), cacheDir);
    const bytes = await readFile(elf);
    assert.equal(bytes.readUInt32BE(0), 0x7f454c46);
    assert.equal(bytes[4], 1, 'ELF32 (multiboot v1 loaders take ELF32)');
    const magic = bytes.subarray(0, 8192).indexOf(Buffer.from([0x02, 0xb0, 0xad, 0x1b]));
    assert.ok(magic >= 0, 'multiboot header in the first 8 KiB');
    const bin = await readFile(elf.replace(/kernel\.elf$/, 'kernel.bin'));
    assert.ok([0xe9, 0xeb].includes(bin[SUITE_RETURN_ADDR - SUITE_LOADER_ADDR]!), 'a jump at SUITE_RETURN_ADDR');
    const { stdout } = await execa('readelf', ['-lW', elf]);
    for (const m of stdout.matchAll(/LOAD\s+\S+\s+(0x[0-9a-f]+)/g)) assert.ok(Number(m[1]) >= SUITE_LOADER_ADDR);
  });

  it('puts a batch kernel\'s return path after .bss, so nothing of the -kernel layout moves', async () => {
    const cases = filterCases(expandAll(await loadTemplates()), ['svm.vmmcall/*']);
    const [k] = await buildKernels(cases);
    const { stdout } = await execa('readelf', ['-SW', k!.elf]);
    const sec = (name: string) => {
      const m = new RegExp(`\\s${name.replace('.', '\\.')}\\s+\\S+\\s+([0-9a-f]+)\\s+\\S+\\s+([0-9a-f]+)`).exec(stdout);
      assert.ok(m, `section ${name}`);
      return { addr: parseInt(m[1]!, 16), size: parseInt(m[2]!, 16) };
    };
    const bss = sec('.bss');
    const suite = sec('.suite');
    assert.ok(sec('.text').addr === KERNEL_LOAD_ADDR);
    assert.ok(suite.addr >= bss.addr + bss.size, '.suite after .bss');
    assert.ok(suite.addr + suite.size <= SUITE_LOADER_ADDR);
  });
});

describe('runner/backends/console: one boot\'s lines to results', () => {
  const k1 = fakeKernel('t.a#0', 't.a', ['t.a/1', 't.a/2', 't.a/3']);
  const k2 = fakeKernel('t.b#0', 't.b', ['t.b/1']);
  const ok = (id: string, rec = '01') => formatCase(id, 'OK', rec);
  const ending = { end: 'done' as const, detail: 'done', idleTimeoutMs: 5000 };

  it('maps each BEGIN segment to its kernel and keeps every record, through console noise', () => {
    const lines = [
      'GRUB loading', `${SUITE_BEGIN}2`, formatBegin('t.a#0', 3, 0), ok('t.a/1'), `\x1b[0m${ok('t.a/2', '02')}`, formatCase('t.a/3', 'SKIP(no_nrips)'), formatEnd(),
      formatBegin('t.b#0', 1, 0), formatCase('t.b/1', 'CRASH', 'ff'), formatEnd(), SUITE_DONE,
    ];
    assert.deepEqual(segmentLines(lines).map((s) => s.kernelId), ['t.a#0', 't.b#0']);
    const r = resultsFromConsole([k1, k2], lines, ending);
    assert.deepEqual(r.get('t.a/1'), { status: 'OK', record: '01' });
    assert.deepEqual(r.get('t.a/2'), { status: 'OK', record: '02' });
    assert.deepEqual(r.get('t.a/3'), { status: 'SKIP', reason: 'no_nrips' });
    assert.deepEqual(r.get('t.b/1'), { status: 'CRASH', record: 'ff' });
  });

  it('on a timeout: the running case TIMEOUT, the rest of its batch and the batches never begun ERROR', () => {
    const lines = [`${SUITE_BEGIN}2`, formatBegin('t.a#0', 3, 0), ok('t.a/1')];
    const r = resultsFromConsole([k1, k2], lines, { end: 'timeout', detail: 'killed', idleTimeoutMs: 5000 });
    assert.equal(r.get('t.a/1')?.status, 'OK');
    assert.equal(r.get('t.a/2')?.status, 'TIMEOUT');
    assert.equal(r.get('t.a/3')?.status, 'ERROR');
    assert.equal(r.get('t.b/1')?.status, 'ERROR');
    assert.match(r.get('t.b/1')?.reason ?? '', /no BEGIN of t\.b#0/);
  });

  it('a BEGIN without the previous batch\'s END is a CRASH of the case that was running', () => {
    const lines = [formatBegin('t.a#0', 3, 0), ok('t.a/1'), formatBegin('t.b#0', 1, 0), ok('t.b/1'), formatEnd()];
    const r = resultsFromConsole([k1, k2], lines, ending);
    assert.equal(r.get('t.a/2')?.status, 'CRASH');
    assert.equal(r.get('t.b/1')?.status, 'OK');
  });

  it('a restart, a PANIC, a bad CRC and another image\'s kernel never pass', () => {
    const bad = ok('t.a/2').replace(/ 01 /, ' 02 ');
    const lines = [formatBegin('other#0', 1, 0), ok('other/1'), formatEnd(), formatBegin('t.a#0', 3, 0), ok('t.a/1'), bad, formatPanic('crash in crash handler')];
    const r = resultsFromConsole([k1, k2], lines, { end: 'restarted', detail: 'again', idleTimeoutMs: 5000 });
    assert.equal(r.get('t.a/1')?.status, 'OK');
    assert.equal(r.get('t.a/2')?.status, 'ERROR');
    // nothing after the bad line is trusted (docs/protocol.md), the PANIC included
    assert.equal(r.get('t.a/3')?.status, 'ERROR');
    assert.match(r.get('t.a/3')?.reason ?? '', /^not run: the batch's output was not trusted/);
    assert.equal(r.size, 4, 'only the cases of the kernels asked for');
    const panic = resultsFromConsole([k1], [formatBegin('t.a#0', 3, 0), ok('t.a/1'), formatPanic('crash in crash handler')], { end: 'restarted', detail: 'again', idleTimeoutMs: 5000 });
    assert.equal(panic.get('t.a/2')?.status, 'CRASH');
    assert.match(panic.get('t.a/2')?.reason ?? '', /PANIC/);
  });

  it('cases before the start the BEGIN line names were not run: ERROR', () => {
    const r = resultsFromConsole([k1], [formatBegin('t.a#0', 3, 2), ok('t.a/3'), formatEnd()], ending);
    assert.equal(r.get('t.a/1')?.status, 'ERROR');
    assert.equal(r.get('t.a/3')?.status, 'OK');
  });
});
