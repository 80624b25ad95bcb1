// The Bochs backend: its pure parts (boot sector, ELF layout, how Bochs ended, probe reasons), then
// end to end on both flavours: L1 and SVM cases compared with the model under the matching profile
// (equal, or a known deviation of the registry), a crash, a triple fault and a hang in one batch.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import {
  BOCHS_BIOS, BOCHS_FLAVOURS, BOCHS_NOT_FOUND, BOCHS_VGABIOS, BOOT_SECTOR, UNSHARE_NOT_FOUND, bochsBackend, bochsExitMessage, bochsrc,
  bootSector, classifyBochsExit, commandLine, elf32Layout, floppyImage, MAX_IMAGE_SECTORS, MEM_LOWER_KB, MEM_UPPER_KB, patchBootSector, type BochsFlavour,
} from '../runner/backends/bochs.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { realHostFs, type HostFs } from '../runner/probe.ts';
import { runKernels, type ScheduleResults } from '../runner/schedule.ts';
import { compareCase } from '../report/compare.ts';
import { loadDeviations } from '../report/deviations.ts';
import { findProfile, withSvmEdx } from '../model/profile.ts';
import { KERNEL_LOAD_ADDR } from '../generator/layout.ts';
import { readFile } from 'node:fs/promises';
import type { Case, CaseOutcome, Kernel } from '../core/types.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'templates');

describe('runner/backends/bochs: boot sector and images', () => {
  it('assembles a 512-byte boot sector whose multiboot block asks for memory sizes and a command line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-bochs-spec-'));
    try {
      const s = await bootSector(dir);
      assert.equal(s.length, BOOT_SECTOR.SIZE);
      assert.deepEqual([s[510], s[511]], [0x55, 0xaa]);
      // the information block: flags bit 0 (mem_lower/mem_upper) and bit 2 (cmdline), the sizes,
      // and a cmdline pointer at the patched slot (Multiboot Specification 3.3)
      const v = new DataView(s.buffer, s.byteOffset);
      let found = false;
      for (let off = 0; off + 20 <= BOOT_SECTOR.ENTRY_OFF; off += 4) {
        if (v.getUint32(off, true) === 0x5 && v.getUint32(off + 4, true) === MEM_LOWER_KB && v.getUint32(off + 8, true) === MEM_UPPER_KB) {
          assert.equal(v.getUint32(off + 16, true), BOOT_SECTOR.LOAD_ADDR + BOOT_SECTOR.CMDLINE_OFF);
          found = true;
        }
      }
      assert.ok(found, 'no multiboot information block with flags 0x5 and the memory sizes');
      const p = patchBootSector(s, 0x10000c, 250, commandLine(3, 7));
      assert.equal(new DataView(p.buffer).getUint32(BOOT_SECTOR.ENTRY_OFF, true), 0x10000c);
      assert.equal(new DataView(p.buffer).getUint16(BOOT_SECTOR.SECTORS_OFF, true), 250);
      assert.equal(Buffer.from(p.subarray(BOOT_SECTOR.CMDLINE_OFF, BOOT_SECTOR.CMDLINE_OFF + 12)).toString('latin1'), 'start=3 end=');
      assert.equal(p[BOOT_SECTOR.CMDLINE_OFF + 'start=3 end=7'.length], 0);
      assert.throws(() => patchBootSector(s, 0, 1, 'x'.repeat(300)), /too long/);
      assert.throws(() => patchBootSector(s, 0, MAX_IMAGE_SECTORS + 1, 'start=0'), /does not fit the boot sector's loader/);
      // the floppy: the patched sector, then the image from the second sector, zeros after it
      const image = Uint8Array.from({ length: 1000 }, (_, i) => (i % 251) + 1);
      const f = floppyImage(s, 0x10000c, image, commandLine(0));
      assert.equal(f.length, 1_474_560);
      assert.equal(new DataView(f.buffer, f.byteOffset).getUint16(BOOT_SECTOR.SECTORS_OFF, true), 2);
      assert.deepEqual(Uint8Array.from(f.subarray(512, 1512)), image);
      assert.ok(f.subarray(1512).every((b) => b === 0));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finds the entry point and checks that the flat image starts at the load address', async () => {
    const cases = filterCases(expandAll(await loadTemplates()), ['svm.vmmcall/nrips=on']);
    const [k] = await buildKernels(cases);
    const { entry, loadBase } = elf32Layout(new Uint8Array(await readFile(k!.elf)));
    assert.equal(loadBase, KERNEL_LOAD_ADDR);
    assert.ok(entry > KERNEL_LOAD_ADDR && entry < KERNEL_LOAD_ADDR + 0x1000, `entry 0x${entry.toString(16)}`);
    assert.throws(() => elf32Layout(new Uint8Array(64)), /not an ELF32/);
  });

  it('writes a headless bochsrc: rfb display, floppy boot, 2.7\'s clock written out, COM1 to a file, no optramimage', () => {
    const rc = bochsrc({ cpuModel: 'ryzen', floppy: 'f.img', com1: 'c.out', log: 'b.log', megs: 128 });
    for (const line of [
      'cpu: model=ryzen, ips=4000000', 'display_library: rfb, options="timeout=0"', 'boot: floppy',
      'com1: enabled=1, mode=file, dev=c.out', 'panic: action=fatal', `romimage: file=${BOCHS_BIOS.file}`, `vgaromimage: file=${BOCHS_VGABIOS.file}`,
    ]) assert.ok(rc.split('\n').includes(line), line);
    assert.doesNotMatch(rc, /optramimage/);
    // a peer's root gives its own BIOS files
    const peer = bochsrc({ cpuModel: 'ryzen', floppy: 'f.img', com1: 'c.out', log: 'b.log', megs: 128, bios: '/r/bios', vgabios: '/r/vga' });
    assert.ok(peer.split('\n').includes('romimage: file=/r/bios') && peer.split('\n').includes('vgaromimage: file=/r/vga'));
    // an ISO (runner/kvmbochs/) boots from a CD, at the clock it asks for, and has no floppy
    const cd = bochsrc({ cpuModel: 'ryzen', cdrom: 'k.iso', com1: 'c.out', log: 'b.log', megs: 1024, ips: 50_000_000 }).split('\n');
    assert.ok(cd.includes('ata0-master: type=cdrom, path=k.iso, status=inserted') && cd.includes('boot: cdrom') && cd.includes('cpu: model=ryzen, ips=50000000'));
    assert.ok(!cd.some((l) => l.startsWith('floppya')));
  });
});

describe('runner/backends/bochs: how a boot ended', () => {
  const base = { output: '', log: '', idleTimeoutMs: 4000 };
  const exiting = (msg: string) => `=====\nBochs is exiting with the following message:\n[UNMAP ] ${msg}\n=====\n`;

  it('the shutdown port is a normal exit, whatever the exit status', () => {
    assert.equal(bochsExitMessage(exiting('Shutdown port: shutdown requested')), 'UNMAP: Shutdown port: shutdown requested');
    assert.deepEqual(classifyBochsExit({ ...base, exitCode: 1, output: exiting('Shutdown port: shutdown requested') }), { end: 'exited', detail: 'shutdown port 0x8900' });
  });

  it('a triple fault (reset) is a crash, named from the log', () => {
    const log = '00013358450e[CPU0  ] exception(): 3rd (13) exception with no resolution, shutdown status is 00h, resetting\n';
    const r = classifyBochsExit({ ...base, exitCode: 0, log });
    assert.equal(r.end, 'crashed');
    assert.match(r.detail, /triple fault .*vector 13/);
  });

  it('another panic is a crash with its message; the timeout comes from our own timer', () => {
    const r = classifyBochsExit({ ...base, exitCode: 1, output: exiting('CPU0: VMRUN with bad state') });
    assert.deepEqual(r, { end: 'crashed', detail: 'Bochs panic: UNMAP: CPU0: VMRUN with bad state' });
    assert.equal(classifyBochsExit({ ...base, killedFor: 'timeout', signal: 'SIGKILL' }).end, 'timeout');
    assert.match(classifyBochsExit({ ...base, spawnError: 'unshare not found' }).detail, /failed to launch: unshare not found/);
  });
});

describe('runner/backends/bochs: probe', () => {
  it('says how to install Bochs when it is not on PATH', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'svmconf-empty-path-'));
    const saved = process.env.PATH;
    try {
      process.env.PATH = empty;
      const info = await bochsBackend({ flavour: 'ryzen' }).probe();
      assert.equal(info.available, false);
      assert.equal(info.reason, BOCHS_NOT_FOUND);
      assert.match(info.reason, /apt-get install bochs bochsbios vgabios/);
      assert.equal(info.features.svm.present, false);
    } finally {
      process.env.PATH = saved;
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('says so when no network namespace can be created for the rfb display', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-fake-path-'));
    const saved = process.env.PATH;
    try {
      // a Bochs that prints its banner, and an unshare that is refused as in a locked-down container
      await writeFile(join(dir, 'bochs'), '#!/bin/sh\necho "Bochs x86 Emulator 2.7"\n', { mode: 0o755 });
      await writeFile(join(dir, 'unshare'), '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
      process.env.PATH = dir;
      const fs: HostFs = { ...realHostFs, readText: async () => 'x' };
      const info = await bochsBackend({ flavour: 'ryzen', fs }).probe();
      assert.equal(info.available, false);
      assert.match(info.reason, /private network namespace/);
      assert.match(info.reason, /Operation not permitted/);
    } finally {
      process.env.PATH = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a missing unshare is a missing tool with its package, not a namespace problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-fake-path-'));
    const saved = process.env.PATH;
    try {
      await writeFile(join(dir, 'bochs'), '#!/bin/sh\necho "Bochs x86 Emulator 2.7"\n', { mode: 0o755 });
      process.env.PATH = dir; // a Bochs, and no unshare
      const fs: HostFs = { ...realHostFs, readText: async () => 'x' };
      const info = await bochsBackend({ flavour: 'ryzen', fs }).probe();
      assert.equal(info.available, false);
      assert.equal(info.reason, UNSHARE_NOT_FOUND);
      assert.match(info.reason, /apt-get install util-linux/);
      assert.doesNotMatch(info.reason, /namespace for|sysctl|permitted/);
    } finally {
      process.env.PATH = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the missing BIOS file and its package', async () => {
    const fs: HostFs = { ...realHostFs, which: async () => '/usr/bin/bochs', readText: async (p) => (p === BOCHS_VGABIOS.file ? undefined : 'x') };
    const info = await bochsBackend({ flavour: 'phenom', fs }).probe();
    assert.equal(info.available, false);
    assert.equal(info.reason, `${BOCHS_VGABIOS.file} not found: apt-get install ${BOCHS_VGABIOS.pkg}`);
  });
});

describe('end to end on Bochs', function () {
  this.timeout(300_000);
  const ids = ['l1.int3/enc=cc,prefix=none', 'l1.int3/enc=cd03,prefix=ds', 'svm.vmmcall/*', 'svm.inject.softint/*'];
  let cases: Case[];
  let kernels: Kernel[];
  const results = new Map<BochsFlavour, { bochs: ScheduleResults; model: ScheduleResults; name: string; ref: string }>();

  before(async function () {
    for (const flavour of ['ryzen', 'phenom'] as BochsFlavour[]) {
      const info = await bochsBackend({ flavour }).probe();
      if (!info.available) throw new Error(`Bochs must be available for this spec (make setup): ${info.reason}`);
    }
    cases = filterCases(expandAll(await loadTemplates([FIXTURES])), ['fixture.crashers/*', ...ids]);
    kernels = await buildKernels(cases, { extraDirs: [FIXTURES] });
    for (const flavour of ['ryzen', 'phenom'] as BochsFlavour[]) {
      const spec = BOCHS_FLAVOURS[flavour];
      const backend = bochsBackend({ flavour });
      const info = await backend.probe();
      const profile = withSvmEdx(findProfile(spec.referenceProfile)!, spec.svmEdx);
      const model = modelBackend({ profile, name: 'ref' });
      const bochs = await runKernels(kernels, [{ backend, info }], { jobs: 2, idleTimeoutMs: 4000 });
      const ref = await runKernels(kernels.filter((k) => !k.id.startsWith('fixture.')), [{ backend: model, info: await model.probe() }], { jobs: 2, idleTimeoutMs: 10_000 });
      results.set(flavour, { bochs, model: ref, name: spec.name, ref: 'ref' });
    }
  });

  const result = (flavour: BochsFlavour, id: string) => {
    const run = results.get(flavour)!;
    const r = run.bochs.get(id)?.[run.name];
    assert.ok(r, `no result for ${id} on ${run.name}`);
    return r;
  };

  for (const flavour of ['ryzen', 'phenom'] as BochsFlavour[]) {
    it(`${flavour}: L1 and SVM records equal the model's under ${BOCHS_FLAVOURS[flavour].referenceProfile}, or are known deviations`, async () => {
      const run = results.get(flavour)!;
      const registry = await loadDeviations(join(ROOT, 'expected', 'deviations.yaml'));
      let compared = 0;
      for (const c of cases.filter((x) => !x.id.startsWith('fixture.'))) {
        const mine = run.bochs.get(c.id)![run.name]!;
        const ref = run.model.get(c.id)![run.ref]!;
        // the model can hide NRIPS and Bochs cannot: a case Bochs cannot run is UNSUPPORTED there
        if (mine.status === 'UNSUPPORTED') {
          assert.equal(c.params.nrips, flavour === 'ryzen' ? 'off' : 'on', c.id);
          continue;
        }
        assert.equal(mine.status, 'OK', `${c.id}: ${mine.status} ${mine.reason ?? ''}`);
        assert.equal(ref.status, 'OK', `${c.id} on the model: ${ref.status} ${ref.reason ?? ''}`);
        const outcome: CaseOutcome = { id: c.id, template: c.template.id, params: c.params, results: { ref, [run.name]: mine } };
        const cmp = compareCase(outcome, c.template.record, { preference: ['ref'], deviations: registry, versions: { [run.name]: 'Bochs 2.7' } });
        assert.ok(cmp.verdict === 'agree' || cmp.verdict === 'known', `${c.id}: ${cmp.verdict} ${cmp.diffs.map((d) => d.field).join(', ')}`);
        compared++;
      }
      assert.ok(compared >= 4, `only ${compared} case(s) compared`);
    });
  }

  it('turns an unexpected exception into CRASH and goes on with the batch', () => {
    for (const flavour of ['ryzen', 'phenom'] as BochsFlavour[]) {
      const r = result(flavour, 'fixture.crashers/what=fault');
      assert.equal(r.status, 'CRASH');
      assert.equal(r.record?.slice(0, 16), '0600000000000000'); // #UD
      assert.equal(result(flavour, 'fixture.crashers/what=ok').status, 'OK');
    }
  });

  it('a triple fault is CRASH for its case and the kernel resumes after it', () => {
    for (const flavour of ['ryzen', 'phenom'] as BochsFlavour[]) {
      const r = result(flavour, 'fixture.crashers/what=triple');
      assert.equal(r.status, 'CRASH');
      assert.match(r.reason ?? '', /triple fault/);
      assert.equal(result(flavour, 'fixture.crashers/what=ok2').status, 'OK');
    }
  });

  it('a hang is TIMEOUT; the records of its boot before it are kept and the batch resumes after it', () => {
    for (const flavour of ['ryzen', 'phenom'] as BochsFlavour[]) {
      assert.equal(result(flavour, 'fixture.crashers/what=hang').status, 'TIMEOUT');
      // ok2 ran in the same boot as the hang, before it
      assert.equal(result(flavour, 'fixture.crashers/what=ok2').record, '5653000000000000' + '08');
      assert.equal(result(flavour, 'fixture.crashers/what=ok3').record, '5653000000000000' + '08');
    }
  });
});
