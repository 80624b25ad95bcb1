// The TCG host's pieces that need no QEMU: the newc initramfs writer (runner/tcghost/cpio.ts), the
// module helpers of the image builder (runner/tcghost/image.ts), and the spool protocol
// (runner/tcghost/spool.ts) against the real agent (runner/tcghost/init.sh serve) run on this
// machine with a stand-in helper.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../generator/index.ts';
import type { HelperEnd } from '../runner/backends/kvm.ts';
import { cpioNewc, type CpioEntry } from '../runner/tcghost/cpio.ts';
import { loadOrder, moduleDepends, moduleName, TcgHostImageError } from '../runner/tcghost/image.ts';
import { agentStatus, heartbeatProblem, spoolSpawner } from '../runner/tcghost/spool.ts';

const INIT_SH = join(ROOT, 'runner', 'tcghost', 'init.sh');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 20 ms until it holds; fail with `what` after `ms` (a hang guard, not a speed check). */
async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// --- a newc reader, independent of the writer ---

interface NewcMember {
  at: number;
  dataAt: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  filesize: number;
  devmajor: number;
  devminor: number;
  rdevmajor: number;
  rdevminor: number;
  namesize: number;
  check: number;
  name: string;
  data: Buffer;
}

const FIELDS = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'filesize', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'] as const;

function assertZeros(buf: Buffer, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++) assert.equal(buf[i], 0, `${what}: padding byte at ${i} is not 0`);
}

function parseNewc(buf: Buffer): NewcMember[] {
  const out: NewcMember[] = [];
  let off = 0;
  for (;;) {
    assert.equal(off % 4, 0, `header at ${off} is not 4-byte aligned`);
    assert.ok(off + 110 <= buf.length, `header at ${off} runs past the end`);
    assert.equal(buf.toString('latin1', off, off + 6), '070701', `magic at ${off}`);
    const f: Record<string, number> = {};
    FIELDS.forEach((name, i) => {
      const s = buf.toString('latin1', off + 6 + 8 * i, off + 14 + 8 * i);
      assert.match(s, /^[0-9A-Fa-f]{8}$/, `field ${name} at ${off}`);
      f[name] = Number.parseInt(s, 16);
    });
    const namesize = f.namesize!;
    const filesize = f.filesize!;
    assert.ok(namesize >= 1, 'namesize counts the NUL');
    const nameEnd = off + 110 + namesize;
    assert.equal(buf[nameEnd - 1], 0, `name at ${off} is not NUL-terminated`);
    const nameBytes = buf.subarray(off + 110, nameEnd - 1);
    assert.equal(nameBytes.includes(0), false, `name at ${off} holds a NUL`);
    const dataAt = nameEnd + ((4 - (nameEnd % 4)) % 4);
    assertZeros(buf, nameEnd, dataAt, 'name padding');
    assert.equal(dataAt % 4, 0, `data at ${dataAt} is not 4-byte aligned`);
    const dataEnd = dataAt + filesize;
    assert.ok(dataEnd <= buf.length, `data of the member at ${off} runs past the end`);
    const next = dataEnd + ((4 - (dataEnd % 4)) % 4);
    assertZeros(buf, dataEnd, next, 'data padding');
    const m = { at: off, dataAt, ...f, name: nameBytes.toString('utf8'), data: buf.subarray(dataAt, dataEnd) } as NewcMember;
    out.push(m);
    off = next;
    if (m.name === 'TRAILER!!!') break;
  }
  assert.equal(off, buf.length, 'bytes after the trailer');
  return out;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const SAMPLE: CpioEntry[] = [
  { name: 'bin', kind: 'dir', mode: 0o755 },
  { name: 'bin/busybox', kind: 'file', mode: 0o755, data: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff, 0xe9]) },
  { name: 'bin/sh', kind: 'symlink', mode: 0o777, data: 'busybox' },
  { name: 'init', kind: 'file', mode: 0o700, data: '#!/bin/busybox sh\necho é\n' },
  { name: 'mods', kind: 'dir', mode: 0o750 },
  { name: 'mods/order', kind: 'file', mode: 0o644, data: 'kvm.ko\nkvm-amd.ko nested=1\n' },
  { name: 'empty', kind: 'file', mode: 0o600 },
  { name: 'mods/ab', kind: 'file', mode: 0o644, data: 'xy' }, // a 2-byte name and data: every padding length
  { name: 'mods/abc', kind: 'file', mode: 0o644, data: 'xyz' },
  { name: 'mods/abcd', kind: 'file', mode: 0o4755, data: 'wxyz!' },
];

describe('runner/tcghost/cpio: the newc initramfs', () => {
  it('writes every member with its header fields, name, data and 4-byte alignment, the trailer last', () => {
    const buf = cpioNewc(SAMPLE);
    const ms = parseNewc(buf);
    assert.equal(ms.length, SAMPLE.length + 1);
    const trailer = ms[ms.length - 1]!;
    assert.equal(trailer.name, 'TRAILER!!!');
    assert.equal(trailer.filesize, 0);
    assert.equal(trailer.mode, 0);
    SAMPLE.forEach((e, i) => {
      const m = ms[i]!;
      assert.equal(m.name, e.name);
      assert.equal(m.namesize, Buffer.byteLength(e.name) + 1);
      const want = e.kind === 'dir' ? Buffer.alloc(0) : typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : Buffer.from(e.data ?? []);
      assert.deepEqual(m.data, want, `data of ${e.name}`);
      assert.equal(m.filesize, want.length);
      assert.equal(m.uid, 0);
      assert.equal(m.gid, 0);
      assert.equal(m.mtime, 0);
      assert.equal(m.check, 0);
      assert.equal(m.nlink, e.kind === 'dir' ? 2 : 1);
      assert.equal(m.at % 4, 0);
      assert.equal(m.dataAt % 4, 0);
    });
    // inode numbers: distinct for the real members
    const inos = ms.slice(0, -1).map((m) => m.ino);
    assert.equal(new Set(inos).size, inos.length);
    assert.ok(inos.every((n) => n > 0));
  });

  it('gives directories, files and symlinks their type and permission bits', () => {
    const ms = parseNewc(cpioNewc(SAMPLE));
    const mode = (name: string): number => ms.find((m) => m.name === name)!.mode;
    assert.equal(mode('bin'), S_IFDIR | 0o755);
    assert.equal(mode('mods'), S_IFDIR | 0o750);
    assert.equal(mode('bin/busybox'), S_IFREG | 0o755);
    assert.equal(mode('init'), S_IFREG | 0o700);
    assert.equal(mode('empty'), S_IFREG | 0o600);
    assert.equal(mode('mods/abcd'), S_IFREG | 0o4755);
    assert.equal(mode('bin/sh'), S_IFLNK | 0o777);
    assert.equal(ms.find((m) => m.name === 'bin/sh')!.data.toString(), 'busybox');
    // type bits in the entry's mode are not taken over
    const odd = parseNewc(cpioNewc([{ name: 'f', kind: 'file', mode: S_IFDIR | 0o644 }]));
    assert.equal(odd[0]!.mode, S_IFREG | 0o644);
  });

  it('gives the same bytes for the same input', () => {
    const a = cpioNewc(SAMPLE);
    const b = cpioNewc(SAMPLE.map((e) => ({ ...e })));
    assert.ok(a.equals(b));
    assert.ok(!a.equals(cpioNewc(SAMPLE.slice(1))));
  });

  it('writes just a trailer for no entries', () => {
    const ms = parseNewc(cpioNewc([]));
    assert.deepEqual(ms.map((m) => m.name), ['TRAILER!!!']);
  });

  it('rejects names that are empty, absolute, hold "..", or come twice', () => {
    const bad = (name: string): CpioEntry[] => [{ name, kind: 'file', mode: 0o644, data: 'x' }];
    assert.throws(() => cpioNewc(bad('')), /bad member name/);
    assert.throws(() => cpioNewc(bad('/init')), /bad member name/);
    assert.throws(() => cpioNewc(bad('..')), /bad member name/);
    assert.throws(() => cpioNewc(bad('a/../b')), /bad member name/);
    assert.throws(() => cpioNewc(bad('a/..')), /bad member name/);
    assert.throws(
      () => cpioNewc([{ name: 'init', kind: 'file', mode: 0o755, data: 'a' }, { name: 'init', kind: 'file', mode: 0o755, data: 'b' }]),
      /"init" twice/,
    );
    // names that merely look alike are fine
    assert.doesNotThrow(() => cpioNewc([{ name: 'a..b', kind: 'file', mode: 0o644 }, { name: '.hidden', kind: 'file', mode: 0o644 }]));
  });

  it('unpacks with GNU cpio to the same tree (skipped without a cpio binary)', async function () {
    const hasCpio = await execa('cpio', ['--version'], { reject: false });
    if (hasCpio.exitCode !== 0) {
      console.log('      (skipped: no cpio binary on this machine)');
      this.skip();
    }
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-cpio-'));
    try {
      const r = await execa('cpio', ['-i', '-d', '--no-absolute-filenames', '--quiet'], { cwd: dir, input: cpioNewc(SAMPLE), reject: false });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(await readFile(join(dir, 'bin', 'busybox')), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff, 0xe9]));
      assert.equal(await readFile(join(dir, 'init'), 'utf8'), '#!/bin/busybox sh\necho é\n');
      assert.equal(await readFile(join(dir, 'mods', 'order'), 'utf8'), 'kvm.ko\nkvm-amd.ko nested=1\n');
      assert.equal((await readFile(join(dir, 'empty'))).length, 0);
      assert.equal(await readlink(join(dir, 'bin', 'sh')), 'busybox');
      assert.ok((await stat(join(dir, 'mods'))).isDirectory());
      assert.equal((await stat(join(dir, 'init'))).mode & 0o777, 0o700);
      assert.equal((await stat(join(dir, 'mods', 'order'))).mode & 0o777, 0o644);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('runner/tcghost/image: module names, dependencies and load order', () => {
  it('reads depends= from the modinfo strings', () => {
    assert.deepEqual(moduleDepends(Buffer.from('\0license=GPL\0depends=kvm,ccp\0name=kvm_amd\0')), ['kvm', 'ccp']);
    assert.deepEqual(moduleDepends(Buffer.from('\x7fELF\0\0junk\0depends=irqbypass\0intree=Y\0')), ['irqbypass']);
    assert.deepEqual(moduleDepends(Buffer.from('\0license=GPL\0depends=\0name=irqbypass\0')), []);
    assert.deepEqual(moduleDepends(Buffer.from('\0license=GPL\0name=irqbypass\0')), []);
    assert.deepEqual(moduleDepends(new Uint8Array()), []);
    // depends= at the very end without a NUL after it
    assert.deepEqual(moduleDepends(Buffer.from('\0name=x\0depends=a,b')), ['a', 'b']);
    // only a whole "depends=" key after a NUL counts
    assert.deepEqual(moduleDepends(Buffer.from('\0xdepends=kvm\0name=x\0')), []);
  });

  it('spells module names as the kernel does', () => {
    assert.equal(moduleName('kvm-amd.ko'), 'kvm_amd');
    assert.equal(moduleName('/lib/modules/6.1.0/kernel/net/9p/9pnet_virtio.ko'), '9pnet_virtio');
    assert.equal(moduleName('virtio-pci-modern-dev.ko'), 'virtio_pci_modern_dev');
    assert.equal(moduleName('kvm'), 'kvm');
  });

  const table: Record<string, string[]> = {
    kvm_amd: ['kvm', 'ccp'],
    kvm: ['irqbypass'],
    irqbypass: [],
    ccp: [],
    '9p': ['9pnet', 'netfs'],
    '9pnet_virtio': ['9pnet', 'virtio', 'virtio_ring'],
    '9pnet': [],
    netfs: [],
    virtio_pci: ['virtio', 'virtio_ring', 'virtio_pci_modern_dev'],
    virtio_pci_modern_dev: [],
  };
  const deps = (n: string): string[] | undefined => table[n];

  it('puts every module after its dependencies, once, and skips builtins', () => {
    const builtin = new Set(['virtio', 'virtio_ring']);
    const order = loadOrder(['kvm_amd', 'virtio_pci', '9pnet_virtio', '9p'], deps, builtin);
    assert.equal(new Set(order).size, order.length, `duplicates in ${order.join(' ')}`);
    for (const b of builtin) assert.ok(!order.includes(b), `builtin ${b} loaded`);
    const want = ['kvm_amd', 'kvm', 'irqbypass', 'ccp', 'virtio_pci', 'virtio_pci_modern_dev', '9pnet_virtio', '9pnet', '9p', 'netfs'];
    assert.deepEqual([...order].sort(), [...want].sort());
    for (const m of order) {
      for (const d of table[m]!) {
        if (builtin.has(d)) continue;
        assert.ok(order.indexOf(d) < order.indexOf(m), `${d} must come before ${m} in ${order.join(' ')}`);
      }
    }
    // wanted order is kept where dependencies allow it
    assert.deepEqual(loadOrder(['ccp', 'irqbypass'], deps, new Set()), ['ccp', 'irqbypass']);
    assert.deepEqual(loadOrder(['kvm_amd'], deps, new Set()), ['irqbypass', 'kvm', 'ccp', 'kvm_amd']);
    // a wanted module that is built in is not loaded either
    assert.deepEqual(loadOrder(['kvm_amd'], deps, new Set(['kvm_amd'])), []);
    // builtins are not looked up: one missing from the package is fine
    assert.deepEqual(loadOrder(['x'], (n) => (n === 'x' ? ['gone'] : undefined), new Set(['gone'])), ['x']);
  });

  it('names the chain when a module is missing', () => {
    const missing = (n: string): string[] | undefined => (n === 'ccp' ? undefined : table[n]);
    assert.throws(
      () => loadOrder(['kvm_amd'], missing, new Set()),
      (e: unknown) => e instanceof TcgHostImageError && /module ccp is not in the kernel package \(needed by kvm_amd\)/.test(e.message),
    );
    const deep = (n: string): string[] | undefined => ({ a: ['b'], b: ['c'] } as Record<string, string[]>)[n];
    assert.throws(() => loadOrder(['a'], deep, new Set()), (e: unknown) => e instanceof TcgHostImageError && /module c .*needed by a -> b\)/.test(e.message));
    assert.throws(
      () => loadOrder(['nosuch'], deps, new Set()),
      (e: unknown) => e instanceof TcgHostImageError && e.message === 'module nosuch is not in the kernel package',
    );
  });

  it('reports a dependency cycle', () => {
    const cyc = (n: string): string[] | undefined => ({ a: ['b'], b: ['c'], c: ['a'], s: ['s'] } as Record<string, string[]>)[n];
    assert.throws(() => loadOrder(['a'], cyc, new Set()), (e: unknown) => e instanceof TcgHostImageError && /cycle: a -> b -> c -> a/.test(e.message));
    assert.throws(() => loadOrder(['s'], cyc, new Set()), (e: unknown) => e instanceof TcgHostImageError && /cycle: s -> s/.test(e.message));
    // a builtin breaks what would be a cycle
    assert.deepEqual(loadOrder(['a'], cyc, new Set(['c'])), ['b', 'a']);
  });
});

describe('runner/tcghost/spool: exit status and heartbeat', () => {
  it('reads the agent\'s exit status', () => {
    assert.deepEqual(agentStatus('0\n', 'e'), { stderr: 'e', exitCode: 0 });
    assert.deepEqual(agentStatus('3\n', ''), { stderr: '', exitCode: 3 });
    assert.deepEqual(agentStatus('137\n', 'x'), { stderr: 'x', signal: 'SIGKILL' });
    assert.deepEqual(agentStatus('130', ''), { stderr: '', signal: 'signal 2' });
    const bad = agentStatus('x', 'err');
    assert.equal(bad.exitCode, undefined);
    assert.equal(bad.signal, undefined);
    assert.equal(bad.stderr, 'err');
    assert.match(bad.spawnError ?? '', /not a number: "x"/);
    assert.match(agentStatus('', '').spawnError ?? '', /not a number/);
  });

  it('tells a missing, fresh and stale heartbeat apart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-hb-'));
    try {
      assert.match((await heartbeatProblem(dir, 30_000)) ?? '', /never reported alive/);
      await writeFile(join(dir, 'alive'), '');
      assert.equal(await heartbeatProblem(dir, 30_000), undefined);
      const old = new Date(Date.now() - 120_000);
      await utimes(join(dir, 'alive'), old, old);
      const p = await heartbeatProblem(dir, 30_000);
      assert.ok(p !== undefined);
      const m = /stopped answering (\d+) s ago/.exec(p);
      assert.ok(m, p);
      const age = Number(m[1]);
      assert.ok(age >= 119 && age <= 180, `age ${age} s`);
      // within the limit it is fine again
      assert.equal(await heartbeatProblem(dir, 600_000), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// --- the spool end to end: init.sh serve with a stand-in helper ---

const HELPER = `#!/bin/sh
# stand-in for svmconf-kvm, behaviour by the first argument
mode=$1
case "$mode" in
  echo)
    for a in "$@"; do printf 'arg:%s\\n' "$a"; done
    cat
    printf 'latin1:\\351\\n'
    shift
    while [ $# -gt 0 ]; do
      if [ "$1" = --kernel ]; then printf 'kernel:'; cat "$2"; printf '\\n'; fi
      shift
    done
    printf 'SVMCONF-KVM {"exit":"hlt","stderr":1}\\n' >&2
    exit 0
    ;;
  exit3)
    echo before
    echo "to stderr" >&2
    exit 3
    ;;
  hang)
    echo $$ > "$2"
    echo started
    exec sleep 1000
    ;;
  tag)
    i=0
    while [ $i -lt 5 ]; do echo "$2 line $i"; i=$((i + 1)); sleep 0.05; done
    echo "$2 err" >&2
    exit "$3"
    ;;
esac
echo "unknown mode $mode" >&2
exit 99
`;

/** Processes in the process group `pgid` (the agent and everything it started, still running). */
async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = await readFile(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (rest[0] !== 'Z' && Number(rest[2]) === pgid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('runner/tcghost/spool: the protocol against init.sh serve', function () {
  let dir = '';
  let helper = '';
  let work = '';
  let agent: ChildProcess | undefined;
  let agentExit: Promise<number | null> | undefined;
  let agentErr = '';
  const pids: number[] = [];

  const spoolLeftovers = async (): Promise<string[]> =>
    (await readdir(dir)).filter((n) => /\.req$/.test(n) || /^\.\d+\.(tmp|gone)$/.test(n));

  before(async function () {
    work = await mkdtemp(join(tmpdir(), 'svmconf-spool-'));
    dir = join(work, 'spool');
    await mkdir(dir);
    helper = join(work, 'helper.sh');
    await writeFile(helper, HELPER);
    await chmod(helper, 0o755);
    agent = spawn('sh', [INIT_SH, 'serve'], {
      env: { ...process.env, SVMCONF_SPOOL: dir, SVMCONF_HELPER: helper },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // a process group of its own: the after hook can end all of it
    });
    agent.stderr!.on('data', (c: Buffer) => (agentErr += c.toString()));
    agentExit = new Promise((r) => agent!.on('exit', (code) => r(code)));
    await waitFor(() => existsSync(join(dir, 'alive')), 20_000, 'the agent\'s first heartbeat');
  });

  after(async function () {
    if (agent?.pid !== undefined) {
      try {
        process.kill(-agent.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  const spawner = () => spoolSpawner({ dir, agentDir: dir, pollMs: 10, problem: () => heartbeatProblem(dir, 30_000) });

  it('runs the helper with its arguments, stdin and kernel, streams stdout bytes for bytes, returns stderr and the exit code', async () => {
    const kernel = join(work, 'kernel.bin');
    const kbytes = Buffer.from('ELF\x01\x02 kernel bytes \xe9\xff end', 'latin1');
    await writeFile(kernel, kbytes);
    const run = spawner();
    let out = '';
    const r = run(['echo', '--kernel', kernel, '--cmdline', 'start=1 end=3', ''], 'cpuid line 1\ncpuid line 2\n', (c) => (out += c));
    const end = await r.done;
    assert.deepEqual(end, { stderr: 'SVMCONF-KVM {"exit":"hlt","stderr":1}\n', exitCode: 0 });
    const lines = out.split('\n');
    assert.equal(lines[0], 'arg:echo');
    assert.equal(lines[1], 'arg:--kernel');
    assert.equal(lines[2], `arg:${dir}/0.req/kernel.elf`);
    assert.deepEqual(lines.slice(3, 8), ['arg:--cmdline', 'arg:start=1 end=3', 'arg:', 'cpuid line 1', 'cpuid line 2']);
    assert.equal(lines[8], 'latin1:\u00e9');
    assert.equal(out, [
      'arg:echo', 'arg:--kernel', `arg:${dir}/0.req/kernel.elf`, 'arg:--cmdline', 'arg:start=1 end=3', 'arg:',
      'cpuid line 1', 'cpuid line 2', 'latin1:\u00e9', `kernel:${kbytes.toString('latin1')}`, '',
    ].join('\n'));
    assert.deepEqual(await spoolLeftovers(), []);
  });

  it('reports the helper\'s exit code', async () => {
    let out = '';
    const end = await spawner()(['exit3'], '', (c) => (out += c)).done;
    assert.deepEqual(end, { stderr: 'to stderr\n', exitCode: 3 });
    assert.equal(out, 'before\n');
    assert.deepEqual(await spoolLeftovers(), []);
  });

  it('kills a running helper on kill() and reports SIGKILL', async () => {
    const pidFile = join(work, 'hang.pid');
    let out = '';
    const r = spawner()(['hang', pidFile], '', (c) => (out += c));
    await waitFor(() => out.includes('started\n'), 20_000, 'the hanging helper\'s output');
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    assert.ok(pid > 0);
    pids.push(pid);
    assert.ok(alive(pid), 'the helper runs before the kill');
    r.kill();
    r.kill(); // a second kill changes nothing
    const end = await Promise.race([r.done, sleep(20_000).then((): HelperEnd => assert.fail('done did not resolve after kill()'))]);
    assert.equal(end.signal, 'SIGKILL');
    assert.equal(end.exitCode, undefined);
    assert.equal(end.spawnError, undefined);
    await waitFor(() => !alive(pid), 10_000, `the helper (pid ${pid}) to be gone`);
    assert.deepEqual(await spoolLeftovers(), []);
  });

  it('withdraws a request killed before the agent claims it', async () => {
    let out = '';
    const r = spawner()(['echo'], '', (c) => (out += c));
    r.kill();
    const end = await r.done;
    // the agent may or may not have started it in between; either way the run ends killed or done, and the spool is clean
    assert.ok(end.signal === 'SIGKILL' || end.exitCode === 0, JSON.stringify(end));
    await waitFor(async () => (await spoolLeftovers()).length === 0, 10_000, 'an empty spool');
  });

  it('serves two runs at once, each with its own output', async () => {
    const run = spawner();
    const outs = ['', ''];
    const a = run(['tag', 'A', '0'], '', (c) => (outs[0] += c));
    const b = run(['tag', 'B', '5'], '', (c) => (outs[1] += c));
    const [ea, eb] = await Promise.all([a.done, b.done]);
    assert.deepEqual(ea, { stderr: 'A err\n', exitCode: 0 });
    assert.deepEqual(eb, { stderr: 'B err\n', exitCode: 5 });
    assert.equal(outs[0], [0, 1, 2, 3, 4].map((i) => `A line ${i}\n`).join(''));
    assert.equal(outs[1], [0, 1, 2, 3, 4].map((i) => `B line ${i}\n`).join(''));
    assert.deepEqual(await spoolLeftovers(), []);
  });

  it('refuses arguments with a newline and runs nothing when the agent is not alive', async () => {
    const nl = await spawner()(['echo', 'a\nb'], '', () => assert.fail('no output expected')).done;
    assert.match(nl.spawnError ?? '', /newline/);
    const dead = spoolSpawner({ dir, agentDir: dir, pollMs: 10, problem: async () => 'QEMU exited', context: async () => '; console: boom' });
    const end = await dead(['echo'], '', () => assert.fail('no output expected')).done;
    assert.equal(end.spawnError, 'the agent cannot run it: QEMU exited; console: boom');
    assert.deepEqual(await spoolLeftovers(), []);
  });

  it('stops on spool/stop and leaves nothing running', async () => {
    assert.ok(agent?.pid !== undefined);
    const pgid = agent.pid;
    await writeFile(join(dir, 'stop'), '');
    const code = await Promise.race([agentExit!, sleep(20_000).then(() => assert.fail('the agent did not stop'))]);
    assert.equal(code, 0, agentErr);
    // the agent's own children (request handlers, cancel watchers) end with it
    await waitFor(async () => (await groupMembers(pgid)).length === 0, 10_000, 'the agent\'s processes to end');
    assert.deepEqual(await spoolLeftovers(), []);
  });
});
