// The pinned peers (runner/peers/, docs/peers.md): the pin file's parser and its errors, the
// grouping into roots, the rebuild decision, dpkg status parsing, the launch argv and environment,
// the status of a peer from what is on disk — all without building anything. The last block runs
// QEMU 11.1 and Bochs 3.1 from build/peers/sid when `make peers` built it, and skips with the
// reason otherwise (building a root takes a minute and 460 MB: not part of `make test` yet).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildKernels, expandAll, filterCases, loadTemplates } from '../generator/index.ts';
import { GUEST_RAM_MIB } from '../generator/layout.ts';
import { DEFAULT_BIOS, defaultCpuModel, qemuArgs } from '../runner/backends/qemu.ts';
import { aptOptions, KERNEL_MANIFEST, kernelPinHash, sourcesList, type KernelManifest } from '../runner/peers/kernels.ts';
import { parsePeerVersion, peerLaunch, peerStatus, peerVersion, pinnedKernel, pinnedLaunch } from '../runner/peers/launch.ts';
import { findPeer, loadPins, parsePackagePin, parsePins, PeerError, rootPinHash, rootPins, type Pins } from '../runner/peers/pins.ts';
import { aptFailure, mmdebstrapArgs, parseDpkgStatus, PEERS_DIR, readStamp, rootAction, rootDir, STAMP_FILE, unmetPins, type RootStamp } from '../runner/peers/roots.ts';

const PINS = `
mirror: http://deb.example/debian
peers:
  - name: qemu@11.1
    suite: sid
    packages: [qemu-system-x86=1:11.1.3+ds-1, seabios=1.17.0-1]
  - name: bochs@3.1
    suite: sid
    packages: [bochs=3.1+dfsg-1, seabios=1.17.0-1]
  - name: qemu@10.0
    suite: trixie
    packages: [qemu-system-x86=1:10.0.13+ds-0+deb13u1]
  - name: linux@7.3
    suite: trixie-backports
    packages: [linux-binary-7.3.4+deb13-amd64=7.3.4-1~bpo13+1, linux-base-7.3.4+deb13-amd64=7.3.4-1~bpo13+1]
`;

const throwsPeer = (f: () => unknown, re: RegExp): void => assert.throws(f, (e: unknown) => e instanceof PeerError && re.test(e.message));

/** A stamp as buildRoot writes it, for the pins' `suite` root, with `installed`. */
function stampFor(pins: Pins, suite: string, installed: Record<string, string>): RootStamp {
  const root = rootPins(pins).find((r) => r.suite === suite)!;
  return {
    suite, mirror: root.mirror, pinHash: rootPinHash(root), pins: root.packages.map((p) => `${p.package}=${p.version}`),
    peers: root.peers, builtAt: '2026-01-01T00:00:00.000Z', buildSeconds: 1, installed,
  };
}

describe('peers: the pin file', () => {
  it('reads the repository pin file: QEMU 11.1 and Bochs 3.1 from sid, Linux 6.1, 6.12 and 7.3', () => {
    const pins = loadPins();
    assert.deepEqual(pins.peers.map((p) => p.name), ['qemu@11.1', 'bochs@3.1', 'linux@6.1', 'linux@6.12', 'linux@7.3']);
    assert.equal(findPeer(pins, 'qemu@11.1').suite, 'sid');
    assert.equal(findPeer(pins, 'linux@7.3').suite, 'trixie-backports');
    // every pin is exact (an epoch, a Debian revision), never a bare upstream number
    for (const p of pins.peers) for (const x of p.packages) assert.match(x.version, /-/, `${p.name} ${x.package}`);
  });

  it('parses kind, short version and package=version (epochs and ~ kept)', () => {
    const pins = parsePins(PINS);
    const q = findPeer(pins, 'qemu@11.1');
    assert.equal(q.kind, 'qemu');
    assert.equal(q.short, '11.1');
    assert.deepEqual(q.packages[0], { package: 'qemu-system-x86', version: '1:11.1.3+ds-1' });
    assert.equal(findPeer(pins, 'linux@7.3').packages[0]!.version, '7.3.4-1~bpo13+1');
    assert.deepEqual(parsePackagePin('a+b.c-d=1:2~3'), { package: 'a+b.c-d', version: '1:2~3' });
    assert.equal(parsePackagePin('qemu-system-x86'), undefined);
  });

  it('groups the emulators into one root per suite, each package once, sorted', () => {
    const roots = rootPins(parsePins(PINS));
    assert.deepEqual(roots.map((r) => [r.suite, r.peers]), [['sid', ['qemu@11.1', 'bochs@3.1']], ['trixie', ['qemu@10.0']]]);
    assert.deepEqual(roots[0]!.packages.map((p) => p.package), ['bochs', 'qemu-system-x86', 'seabios']);
  });

  it('names file:line for each kind of mistake', () => {
    throwsPeer(() => parsePins(PINS.replace('name: bochs@3.1', 'name: bochs')), /^runner\/peers\/pins\.yaml:7: name bochs: expected <kind>@<version>/);
    throwsPeer(() => parsePins(PINS.replace('name: bochs@3.1', 'name: vbox@7.0')), /:7: name vbox@7.0/);
    throwsPeer(() => parsePins(PINS.replace('name: bochs@3.1', 'name: qemu@11.1')), /:7: qemu@11.1 is pinned twice/);
    throwsPeer(() => parsePins(PINS.replace('bochs=3.1+dfsg-1', 'bochs')), /:9: bochs@3.1: bochs: expected package=version/);
    throwsPeer(() => parsePins(PINS.replace('suite: trixie\n', 'suit: trixie\n')), /:11: unknown key suit/);
    throwsPeer(() => parsePins(PINS.replace('mirror: http://deb.example/debian', 'mirror: deb.example')), /mirror: must be an http/);
    throwsPeer(() => parsePins('peers: [\n'), /pins\.yaml:\d+:/);
  });

  it('refuses two versions of one package in one root', () => {
    throwsPeer(() => parsePins(PINS.replace('bochs=3.1+dfsg-1, seabios=1.17.0-1', 'bochs=3.1+dfsg-1, seabios=1.16.3-2')), /seabios is pinned to 1\.17\.0-1 and 1\.16\.3-2 in the sid root/);
  });

  it('hashes a root by its suite, mirror and versions', () => {
    const a = rootPins(parsePins(PINS))[0]!;
    assert.equal(rootPinHash(a), rootPinHash({ ...a, peers: ['other'] }));
    assert.notEqual(rootPinHash(a), rootPinHash({ ...a, packages: [...a.packages.slice(0, 2), { package: 'seabios', version: '1.17.0-2' }] }));
    assert.notEqual(rootPinHash(a), rootPinHash({ ...a, mirror: 'http://other/debian' }));
  });
});

describe('peers: roots', () => {
  const pins = parsePins(PINS);
  const sid = rootPins(pins)[0]!;
  const full = { bochs: '3.1+dfsg-1', 'qemu-system-x86': '1:11.1.3+ds-1', seabios: '1.17.0-1', libc6: '2.42-5' };

  it('builds when there is no root, when asked, when the pins changed, and when a pin is not installed', () => {
    assert.deepEqual(rootAction(sid, undefined), { build: true, reason: 'no root for sid yet' });
    assert.equal(rootAction(sid, stampFor(pins, 'sid', full), true).build, true);
    assert.deepEqual(rootAction(sid, stampFor(pins, 'sid', full)), { build: false, reason: 'up to date (built 2026-01-01T00:00:00.000Z)' });
    const newer = { ...sid, packages: sid.packages.map((p) => (p.package === 'bochs' ? { ...p, version: '3.2+dfsg-1' } : p)) };
    const r = rootAction(newer, stampFor(pins, 'sid', full));
    assert.equal(r.build, true);
    assert.match(r.reason, /the pins changed \(bochs=3\.2\+dfsg-1, -bochs=3\.1\+dfsg-1\)/);
    const lacking = rootAction(sid, stampFor(pins, 'sid', { ...full, seabios: '1.16.3-2' }));
    assert.match(lacking.reason, /lacks seabios=1\.17\.0-1 \(have 1\.16\.3-2\)/);
  });

  it('reads dpkg status: installed packages only, continuation lines ignored', () => {
    const status = [
      'Package: qemu-system-x86\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:11.1.3+ds-1\nDescription: QEMU\n full-system emulation\n .\n more',
      'Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0-1',
      'Package: seabios\nStatus: install ok installed\nArchitecture: all\nVersion: 1.17.0-1\n',
    ].join('\n\n');
    const m = parseDpkgStatus(status);
    assert.deepEqual([...m.keys()], ['qemu-system-x86', 'seabios']);
    assert.deepEqual(m.get('qemu-system-x86'), { package: 'qemu-system-x86', version: '1:11.1.3+ds-1', status: 'install ok installed', architecture: 'amd64' });
    assert.deepEqual(unmetPins(sid.packages, m), ['bochs=3.1+dfsg-1 (not installed)']);
  });

  it('asks mmdebstrap for the pinned versions of the suite, sid\'s expired Release accepted', () => {
    assert.deepEqual(mmdebstrapArgs(sid, '/t'), [
      '--variant=apt', '--aptopt=Acquire::Check-Valid-Until "false"', '--include=bochs=3.1+dfsg-1,qemu-system-x86=1:11.1.3+ds-1,seabios=1.17.0-1', 'sid', '/t', 'http://deb.example/debian',
    ]);
  });

  it('says what to do when a pinned version left the archive', () => {
    const msg = aptFailure("Reading package lists...\nE: Version '1:11.1.3+ds-1' for 'qemu-system-x86' was not found\n", 'mmdebstrap of the sid root');
    assert.match(msg, /^mmdebstrap of the sid root failed: E: Version '1:11\.1\.3\+ds-1' for 'qemu-system-x86' was not found — a pinned version is no longer in the archive/);
    assert.match(msg, /svmconf peers --latest/);
  });
});

describe('peers: the private apt configuration', () => {
  it('points every state and source path under its own directory', () => {
    const o = aptOptions('/b/apt');
    const v = (k: string): string | undefined => o.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1);
    assert.equal(v('Dir::Etc::SourceList'), '/b/apt/sources.list');
    assert.equal(v('Dir::Etc::SourceParts'), '/dev/null');
    assert.equal(v('Dir::State::Lists'), '/b/apt/lists');
    assert.equal(v('Dir::State::status'), '/b/apt/status');
    assert.equal(v('Dir::Cache'), '/b/apt/cache');
    assert.equal(v('Acquire::Check-Valid-Until'), 'false');
    assert.equal(o.filter((x) => x === '-o').length * 2, o.length);
    assert.equal(sourcesList('http://m/debian', ['sid', 'trixie', 'sid']), 'deb http://m/debian sid main\ndeb http://m/debian trixie main\n');
  });
});

describe('peers: launch', () => {
  const pins = parsePins(PINS);

  it('runs QEMU through the root\'s loader with its libraries, modules and data directories', () => {
    const l = peerLaunch(findPeer(pins, 'qemu@11.1'), '/r');
    assert.equal(l.file, '/r/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    assert.deepEqual(l.args, [
      '--inhibit-cache', '--library-path', '/r/usr/lib/x86_64-linux-gnu:/r/lib/x86_64-linux-gnu:/r/usr/lib/x86_64-linux-gnu/pulseaudio',
      '/r/usr/bin/qemu-system-x86_64', '-L', '/r/usr/share/qemu', '-L', '/r/usr/share/seabios',
    ]);
    assert.deepEqual(l.env, { QEMU_MODULE_DIR: '/r/usr/lib/x86_64-linux-gnu/qemu', LC_ALL: 'C' });
    assert.deepEqual(l.versionArgs, ['--version']);
  });

  it('runs Bochs as Debian\'s wrapper does (-q), with its plugins, BXSHARE and BIOS files from the root', () => {
    const l = peerLaunch(findPeer(pins, 'bochs@3.1'), '/r');
    assert.deepEqual(l.args.slice(-2), ['/r/usr/bin/bochs-bin', '-q']);
    assert.deepEqual(l.env, { LTDL_LIBRARY_PATH: '/r/usr/lib/x86_64-linux-gnu/bochs/plugins', BXSHARE: '/r/usr/share/bochs', LC_ALL: 'C' });
    assert.equal(l.bios, '/r/usr/share/bochs/BIOS-bochs-latest');
    assert.equal(l.vgabios, '/r/usr/share/seabios/vgabios-isavga.bin');
  });

  it('has no launch for a kernel', () => {
    throwsPeer(() => peerLaunch(findPeer(pins, 'linux@7.3'), '/r'), /kernel, not an emulator/);
  });

  it('reads the versions as the binaries print them', () => {
    assert.equal(parsePeerVersion('qemu', 'QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1)\nCopyright (c) 2003-2026'), 'QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1)');
    assert.equal(parsePeerVersion('bochs', '====\n                        Bochs x86 Emulator 3.1\n'), 'Bochs 3.1');
    assert.equal(parsePeerVersion('qemu', 'ld.so: error while loading shared libraries'), undefined);
  });
});

describe('peers: status from what is on disk', () => {
  const pins = parsePins(PINS);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svmconf-peers-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function fakeRoot(installed: Record<string, string>): Promise<string> {
    const root = rootDir('sid', dir);
    for (const f of ['usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'usr/bin/qemu-system-x86_64', 'usr/bin/bochs-bin', 'usr/share/bochs/BIOS-bochs-latest', 'usr/share/seabios/vgabios-isavga.bin']) {
      await mkdir(join(root, f, '..'), { recursive: true });
      await writeFile(join(root, f), '');
    }
    await writeFile(join(root, STAMP_FILE), JSON.stringify(stampFor(pins, 'sid', installed)));
    return root;
  }

  it('says missing, with the command that installs it, when there is no root', () => {
    const s = peerStatus(findPeer(pins, 'qemu@11.1'), pins, { peers: dir });
    assert.equal(s.installed, false);
    assert.equal(s.reason, 'no sid root');
    assert.match(s.install, /svmconf peers/);
    throwsPeer(() => pinnedLaunch('qemu@11.1', pins, { peers: dir }), /qemu@11\.1 is not installed: no sid root; run svmconf peers/);
  });

  it('gives the launch and the exact installed versions of a built root', async () => {
    const root = await fakeRoot({ 'qemu-system-x86': '1:11.1.3+ds-1', seabios: '1.17.0-1', bochs: '3.1+dfsg-1' });
    const s = peerStatus(findPeer(pins, 'qemu@11.1'), pins, { peers: dir });
    assert.equal(s.installed, true, s.reason);
    assert.deepEqual(s.packages, { 'qemu-system-x86': '1:11.1.3+ds-1', seabios: '1.17.0-1' });
    assert.equal(s.launch?.binary, join(root, 'usr/bin/qemu-system-x86_64'));
    assert.equal(pinnedLaunch('bochs@3.1', pins, { peers: dir }).bios, join(root, 'usr/share/bochs/BIOS-bochs-latest'));
    assert.deepEqual(readStamp(root)?.peers, ['qemu@11.1', 'bochs@3.1']);
  });

  it('says missing when the pins changed since the root was built, or a file is gone', async () => {
    const root = await fakeRoot({ 'qemu-system-x86': '1:11.1.3+ds-1', seabios: '1.17.0-1', bochs: '3.1+dfsg-1' });
    const newer = parsePins(PINS.replace('1:11.1.3+ds-1', '1:11.1.4+ds-1'));
    assert.match(peerStatus(findPeer(newer, 'qemu@11.1'), newer, { peers: dir }).reason, /built from other pins/);
    await rm(join(root, 'usr/bin/bochs-bin'));
    assert.match(peerStatus(findPeer(pins, 'bochs@3.1'), pins, { peers: dir }).reason, /usr\/bin\/bochs-bin is missing from the root/);
  });

  it('gives a downloaded kernel\'s files, and says missing for another pin', async () => {
    const k = findPeer(pins, 'linux@7.3');
    const kdir = join(dir, '7.3.4-1~bpo13+1');
    await mkdir(join(kdir, 'mods'), { recursive: true });
    await writeFile(join(kdir, 'vmlinuz'), '');
    const manifest: KernelManifest = {
      peer: k.name, suite: k.suite, mirror: pins.mirror, pinHash: kernelPinHash(k, pins.mirror), release: '7.3.4+deb13-amd64', fetchedAt: 'x',
      packages: k.packages.map((p) => ({ ...p, deb: `${p.package}.deb` })), modules: [{ file: 'kvm-amd.ko', params: 'nested=1' }],
    };
    await writeFile(join(kdir, KERNEL_MANIFEST), JSON.stringify(manifest));
    const got = pinnedKernel('linux@7.3', pins, { kernels: dir });
    assert.equal(got.vmlinuz, join(kdir, 'vmlinuz'));
    assert.equal(got.modsDir, join(kdir, 'mods'));
    const other = parsePins(PINS.replace('linux-base-7.3.4+deb13-amd64=7.3.4-1~bpo13+1', 'linux-base-7.3.4+deb13-amd64=7.3.4-2~bpo13+1'));
    assert.match(peerStatus(findPeer(other, 'linux@7.3'), other, { kernels: dir }).reason, /other pins/);
  });
});

describe('peers: QEMU 11.1 and Bochs 3.1 from build/peers/sid (after make peers)', function () {
  this.timeout(120_000);
  const pins = loadPins();
  const status = (name: string) => peerStatus(findPeer(pins, name), pins);

  before(function () {
    const s = status('qemu@11.1');
    if (!existsSync(rootDir('sid', PEERS_DIR)) || !s.installed) {
      console.log(`      skipped: ${s.reason} (run make peers: builds the sid root, about 40 s and 460 MB)`);
      this.skip();
    }
  });

  it('reports the pinned versions through the launch prefix', async () => {
    assert.match(await peerVersion(pinnedLaunch('qemu@11.1', pins)), /^QEMU emulator version 11\.1\.\d+ \(Debian 1:11\.1\.\d+\+ds-\d+\)$/);
    assert.equal(await peerVersion(pinnedLaunch('bochs@3.1', pins)), 'Bochs 3.1');
    assert.equal(status('qemu@11.1').packages['qemu-system-x86'], findPeer(pins, 'qemu@11.1').packages.find((p) => p.package === 'qemu-system-x86')!.version);
  });

  it('boots a suite kernel on QEMU 11.1 TCG and the serial protocol comes out whole', async () => {
    const cases = filterCases(expandAll(await loadTemplates()), ['l1.int3/*']);
    const [kernel] = await buildKernels(cases);
    const l = pinnedLaunch('qemu@11.1', pins);
    const args = qemuArgs({ accel: 'tcg', cpuModel: defaultCpuModel('tcg'), cpu: kernel!.cpu, elf: kernel!.elf, start: 0, memoryMib: GUEST_RAM_MIB, bios: DEFAULT_BIOS });
    const r = await execa(l.file, [...l.args, ...args], { env: l.env, reject: false, stdin: 'ignore', timeout: 60_000 });
    const lines = String(r.stdout).split('\n').filter((x) => x.startsWith('SVMCONF '));
    assert.equal(r.exitCode, 1, `isa-debug-exit value 0 expected (exit status 1); stderr: ${String(r.stderr)}`);
    assert.match(lines[0]!, new RegExp(`^SVMCONF BEGIN ${kernel!.id} ${cases.length} `));
    // after BEGIN the kernel's CPUID line (docs/protocol.md), then one CASE line per case
    assert.match(lines[1]!, /^SVMCONF CPUID 8000000a( [0-9a-f]{8}){5}$/);
    assert.deepEqual(lines.slice(2, -1).map((x) => x.split(' ').slice(2, 4).join(' ')), cases.map((c) => `${c.id} OK`));
    assert.match(lines.at(-1)!, /^SVMCONF END [0-9a-f]{8}$/);
  });
});

describe('peers: which pinned version runs by default', () => {
  it('orders pin versions numerically and runs the newest of each family, the older ones when named', async () => {
    const { compareShortVersions } = await import('../runner/peers/pins.ts');
    const { newestPeers } = await import('../suite/backends.ts');
    assert.ok(compareShortVersions('11.1', '9.2') > 0);
    assert.ok(compareShortVersions('6.12', '6.2') > 0);
    assert.equal(compareShortVersions('7.3', '7.3.0'), 0);
    const col = (name: string) => ({ name }) as Parameters<typeof newestPeers>[0][number];
    const split = newestPeers([col('kvm-tcg@6.1'), col('kvm-tcg@7.3'), col('kvm-tcg@6.12'), col('qemu-tcg@11.1')]);
    assert.deepEqual(split.newest.map((b) => b.name), ['kvm-tcg@7.3', 'qemu-tcg@11.1']);
    assert.deepEqual(split.older.map((b) => b.name), ['kvm-tcg@6.12', 'kvm-tcg@6.1']);
  });
});
