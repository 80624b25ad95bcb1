// The versioned kvm-tcg columns (docs/backends/kvm-tcg.md "Versioned columns"): one TCG host per
// pinned kernel (runner/peers/pins.yaml linux@…) on the newest pinned QEMU. Without QEMU: the
// columns the pins give, an uninstalled peer's reason, the image of a pinned kernel (built,
// kept, rebuilt), and the agent's markers (alive before ready). With linux@7.3 and the newest
// pinned QEMU installed (`svmconf peers`) and busybox-static downloaded (`make tcghost`): a probe
// of kvm-tcg@7.3 and a handful of cases whose records equal the model's; skipped with the reason
// printed otherwise, never passed.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import type { Case, Kernel } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { kvmTcgPeerBackends, newestQemuPin, stopTcgHost } from '../runner/backends/kvm-tcg.ts';
import { modelBackend } from '../runner/backends/model.ts';
import type { Backend } from '../runner/backend.ts';
import { runKernels, type ScheduleResults } from '../runner/schedule.ts';
import { okRecords } from './support/records.ts';
import { MISSING_BUSYBOX, readyPeerImage, TcgHostImageError, type PeerKernelFiles } from '../runner/tcghost/image.ts';
import { peerStatuses } from '../runner/peers/launch.ts';
import { loadPins, parsePins } from '../runner/peers/pins.ts';

const PEER = 'linux@7.3';
const COLUMN = 'kvm-tcg@7.3';
/**
 * Cases kvm-tcg@7.3 gives the model's records for (the whole-suite run of docs/runs.md): L1's INT3
 * in every encoding, ICEBP (QEMU 11.1 delivers it as #DB, which QEMU 7.2 did not), and one L2
 * exit through KVM's nested VMRUN.
 */
const CASES = ['l1.int3/*', 'l1.icebp/*', 'svm.vmmcall/nrips=off'];

const PINS = `mirror: http://deb.debian.org/debian
peers:
  - name: qemu@9.2
    suite: trixie
    packages: [qemu-system-x86=1:9.2.2+ds-1]
  - name: qemu@11.1
    suite: sid
    packages: [qemu-system-x86=1:11.1.3+ds-1]
  - name: linux@9.9
    suite: sid
    packages: [linux-image-9.9.0-1-amd64=9.9.1-1]
  - name: linux@8.0
    suite: sid
    packages: [linux-image-8.0.0-1-amd64=8.0.1-1]
`;

const PINS_NO_QEMU = `mirror: http://deb.debian.org/debian
peers:
  - name: linux@9.9
    suite: sid
    packages: [linux-image-9.9.0-1-amd64=9.9.1-1]
`;

/** Member names of a newc archive (runner/tcghost/cpio.ts writes them; test/tcghost.spec.ts checks the format). */
function newcNames(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  const pad = (n: number): number => (n + 3) & ~3;
  for (;;) {
    const field = (i: number): number => parseInt(buf.toString('ascii', at + 6 + 8 * i, at + 14 + 8 * i), 16);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.toString('utf8', at + 110, at + 110 + nameSize - 1);
    if (name === 'TRAILER!!!') return out;
    const dataAt = pad(at + 110 + nameSize);
    out.set(name, buf.subarray(dataAt, dataAt + size));
    at = pad(dataAt + size);
  }
}

describe('kvm-tcg@<version>: the columns of the pinned kernels', () => {
  it('gives one column per pinned kernel, in pin order, each on the newest pinned QEMU', () => {
    const pins = parsePins(PINS);
    assert.deepEqual(kvmTcgPeerBackends({}, pins).map((b) => b.name), ['kvm-tcg@9.9', 'kvm-tcg@8.0']);
    assert.equal(newestQemuPin(pins)?.name, 'qemu@11.1');
    // the repository's own pins: one column per linux@ entry
    const own = loadPins();
    assert.deepEqual(kvmTcgPeerBackends({}, own).map((b) => b.name), own.peers.filter((p) => p.kind === 'linux').map((p) => `kvm-tcg@${p.short}`));
  });

  it('says so when no QEMU is pinned', async () => {
    const pins = parsePins(PINS_NO_QEMU);
    assert.equal(newestQemuPin(pins), undefined);
    const info = await kvmTcgPeerBackends({}, pins)[0]!.probe();
    assert.equal(info.available, false);
    assert.match(info.reason, /no QEMU is pinned in runner\/peers\/pins\.yaml/);
  });

  it('probes a column whose kernel is not downloaded as unavailable, with the reason and the install command, and starts nothing', async () => {
    const [col] = kvmTcgPeerBackends({}, parsePins(PINS));
    const info = await col!.probe();
    assert.equal(info.available, false);
    assert.match(info.reason, /linux@9\.9 is not installed: not downloaded .*run svmconf peers \(or make peers\)/);
    assert.equal(info.family, 'kvm-tcg');
    assert.equal(info.peer, 'linux@9.9');
    assert.equal(info.kind, 'emulator');
    assert.equal(info.features.svm.present, false);
  });
});

describe('runner/tcghost/image: the image of a pinned kernel', function () {
  this.timeout(120_000);
  let work = '';
  let kernel: PeerKernelFiles;
  let tcghostDir = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'svmconf-peerimage-'));
    // a kernel download as runner/peers/kernels.ts leaves it: vmlinuz, mods/ with order
    const kdir = join(work, 'kernel');
    await mkdir(join(kdir, 'mods'), { recursive: true });
    await writeFile(join(kdir, 'vmlinuz'), 'not a kernel');
    await writeFile(join(kdir, 'mods', 'kvm.ko'), 'kvm module bytes');
    await writeFile(join(kdir, 'mods', 'kvm-amd.ko'), 'kvm_amd module bytes');
    await writeFile(join(kdir, 'mods', 'order'), 'kvm.ko\nkvm-amd.ko nested=1\n');
    kernel = {
      peer: 'linux@9.9',
      vmlinuz: join(kdir, 'vmlinuz'),
      modsDir: join(kdir, 'mods'),
      manifest: {
        peer: 'linux@9.9', suite: 'sid', mirror: 'http://deb.debian.org/debian',
        packages: [{ package: 'linux-image-9.9.0-1-amd64', version: '9.9.1-1', deb: 'linux-image-9.9.0-1-amd64_9.9.1-1_amd64.deb' }],
        pinHash: 'a'.repeat(64), release: '9.9.0-1-amd64',
        modules: [{ file: 'kvm.ko', params: '' }, { file: 'kvm-amd.ko', params: 'nested=1' }],
        fetchedAt: '2026-12-01T00:00:00.000Z',
      },
    };
    // a busybox-static .deb holding a stand-in bin/busybox
    tcghostDir = join(work, 'tcghost');
    const pkg = join(work, 'bbpkg');
    await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
    await mkdir(join(pkg, 'bin'), { recursive: true });
    await writeFile(join(pkg, 'DEBIAN', 'control'), 'Package: busybox-static\nVersion: 1:1.0-1\nArchitecture: amd64\nMaintainer: svmconf specs <specs@invalid>\nDescription: stand-in\n');
    await writeFile(join(pkg, 'bin', 'busybox'), '#!/bin/sh\necho stand-in busybox\n');
    await chmod(join(pkg, 'bin', 'busybox'), 0o755);
    await mkdir(join(tcghostDir, 'debs'), { recursive: true });
    await execa('dpkg-deb', ['--root-owner-group', '--build', pkg, join(tcghostDir, 'debs', 'busybox-static_1%3a1.0-1_amd64.deb')]);
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('says busybox-static is missing when build/tcghost/debs has none', async () => {
    await assert.rejects(readyPeerImage(kernel, { dir: join(work, 'img0'), tcghostDir: join(work, 'nothing') }), (e: Error) => e instanceof TcgHostImageError && e.message === MISSING_BUSYBOX);
  });

  it('packs the peer\'s modules in its order with init.sh, busybox and the helper; boots the peer\'s own vmlinuz', async () => {
    const dir = join(work, 'img');
    const image = await readyPeerImage(kernel, { dir, tcghostDir });
    assert.equal(image.vmlinuz, kernel.vmlinuz);
    assert.equal(image.manifest.peer, 'linux@9.9');
    assert.equal(image.manifest.kernelRelease, '9.9.0-1-amd64');
    assert.equal(image.manifest.kernelPackage, 'linux-image-9.9.0-1-amd64_9.9.1-1_amd64');
    assert.deepEqual(image.manifest.modules, kernel.manifest.modules);
    const members = newcNames(gunzipSync(await readFile(image.initrd)));
    assert.equal(members.get('mods/order')?.toString(), 'kvm.ko\nkvm-amd.ko nested=1\n');
    assert.equal(members.get('mods/kvm-amd.ko')?.toString(), 'kvm_amd module bytes');
    assert.equal(members.get('init')?.toString(), await readFile(join(ROOT, 'runner', 'tcghost', 'init.sh'), 'utf8'));
    assert.match(members.get('bin/busybox')?.toString() ?? '', /stand-in busybox/);
    assert.ok((members.get('bin/svmconf-kvm')?.length ?? 0) > 10_000, 'the static helper is packed');
  });

  it('keeps the image while nothing changed, rebuilds it for a new download of the kernel', async () => {
    const dir = join(work, 'img');
    const before = (await stat(join(dir, 'initrd.gz'))).mtimeMs;
    await readyPeerImage(kernel, { dir, tcghostDir });
    assert.equal((await stat(join(dir, 'initrd.gz'))).mtimeMs, before, 'kept');
    await writeFile(join(kernel.modsDir, 'kvm-amd.ko'), 'kvm_amd module bytes, fetched again');
    const again = await readyPeerImage({ ...kernel, manifest: { ...kernel.manifest, fetchedAt: '2026-12-02T00:00:00.000Z' } }, { dir, tcghostDir });
    assert.notEqual((await stat(join(dir, 'initrd.gz'))).mtimeMs, before, 'rebuilt');
    assert.equal(newcNames(gunzipSync(await readFile(again.initrd))).get('mods/kvm-amd.ko')?.toString(), 'kvm_amd module bytes, fetched again');
    assert.ok(!existsSync(join(dir, `work-${process.pid}`)), 'the work directory is removed');
  });
});

describe('runner/tcghost/init.sh: the markers the host waits for', () => {
  it('touches alive before ready, so a request sent on ready finds the heartbeat', async () => {
    const spool = await mkdtemp(join(tmpdir(), 'svmconf-facts-'));
    try {
      await execa('sh', [join(ROOT, 'runner', 'tcghost', 'init.sh'), 'facts'], { env: { SVMCONF_SPOOL: spool } });
      assert.ok(existsSync(join(spool, 'ready')));
      assert.ok(existsSync(join(spool, 'alive')), 'alive exists once ready does');
      assert.ok((await stat(join(spool, 'alive'))).mtimeMs <= (await stat(join(spool, 'ready'))).mtimeMs);
      assert.ok(existsSync(join(spool, 'facts', 'cpuinfo')));
    } finally {
      await rm(spool, { recursive: true, force: true });
    }
  });
});

async function run(kernels: Kernel[], backend: Backend): Promise<ScheduleResults> {
  const info = await backend.probe();
  assert.ok(info.available, `${backend.name} unavailable: ${info.reason}`);
  return runKernels(kernels, [{ backend, info }], { jobs: 1, idleTimeoutMs: 300_000 });
}

describe(`${COLUMN}: Linux 7.3's KVM on the pinned QEMU's TCG`, function () {
  this.timeout(300_000);
  let column: Backend;

  before(async function () {
    const pins = loadPins();
    const qemu = newestQemuPin(pins);
    const missing = peerStatuses(pins).filter((s) => (s.name === PEER || s.name === qemu?.name) && !s.installed);
    const why = qemu === undefined ? 'no QEMU is pinned' : missing.map((s) => `${s.name}: ${s.reason}; run ${s.install}`).join('; ');
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    column = kvmTcgPeerBackends({}, pins).find((b) => b.name === COLUMN)!;
    const info = await column.probe();
    if (!info.available && info.reason === MISSING_BUSYBOX) {
      console.log(`      skipped: ${info.reason}`);
      this.skip();
    }
  });

  after(async () => {
    await stopTcgHost();
  });

  it('probes KVM in the guest: Linux 7.3 on QEMU 11.1 TCG, its family, peer and exact packages', async () => {
    const info = await column.probe();
    assert.ok(info.available, info.reason);
    assert.match(info.version ?? '', /^KVM API \d+, Linux 7\.3\.\d+\S*, kvm_amd; nested state \d+ bytes; in QEMU 11\.1\.\d+ TCG \(-cpu max\), linux-binary-7\.3\.\d+/);
    assert.equal(info.family, 'kvm-tcg');
    assert.equal(info.peer, PEER);
    const packages = info.packages ?? {};
    assert.match(packages['qemu-system-x86'] ?? '', /^1:11\.1\.\d+/);
    assert.ok(Object.keys(packages).some((p) => p.startsWith('linux-binary-7.3.')), JSON.stringify(packages));
    assert.equal(info.features.svm.present, true);
    assert.equal(info.features.nrips.present, false);
  });

  it('gives the model\'s records for L1 INT3 and ICEBP and an L2 VMMCALL', async () => {
    const cases = filterCases(expandAll(await loadTemplates()), CASES);
    assert.ok(cases.length >= 6 && cases.length <= 10, `${cases.length} cases`);
    const kernels = await buildKernels(cases);
    const got = okRecords(await run(kernels, column), COLUMN, cases);
    const want = okRecords(await run(kernels, modelBackend()), 'model', cases);
    for (const [id, rec] of got) assert.equal(rec, want.get(id), `${id}: ${COLUMN} and the model differ`);
  });
});
