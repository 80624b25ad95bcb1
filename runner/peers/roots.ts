// The emulator peers' roots (docs/peers.md "Roots"): one Debian root per suite of
// runner/peers/pins.yaml, built by mmdebstrap under build/peers/<suite>/ from the pinned package
// versions. Nothing is installed on the host: the root is a private directory tree, and its
// binaries run through its own loader (runner/peers/launch.ts), without chroot.
//
// Cached: build/peers/<suite>/svmconf-root.json (the stamp) records the pins the root was built
// from and what dpkg installed; a root is rebuilt only when asked (--rebuild) or when its pins
// changed. A build goes into a temporary directory beside it and is renamed into place only once
// it succeeded and holds every pinned version, so a failed or interrupted build leaves the old
// root (or none) and never half a root.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../../generator/index.ts';
import { formatPackagePin, PeerError, rootPinHash, type PackagePin, type RootPin } from './pins.ts';

export const PEERS_DIR = join(ROOT, 'build', 'peers');
export const STAMP_FILE = 'svmconf-root.json';
export const MMDEBSTRAP = 'mmdebstrap';
export const MMDEBSTRAP_MISSING =
  'mmdebstrap not found: it builds the peer roots under build/peers/ without touching the host\'s packages; install it with `apt-get install mmdebstrap` (Debian and Ubuntu), then run `svmconf peers` again';
/** sid's Release file can be past its Valid-Until date on a mirror; the pinned versions are what is checked. */
export const NO_VALID_UNTIL = 'Acquire::Check-Valid-Until "false"';

export const rootDir = (suite: string, dir = PEERS_DIR): string => join(dir, suite);

/** What a root's stamp records. */
export interface RootStamp {
  suite: string;
  mirror: string;
  /** rootPinHash of the pins it was built from. */
  pinHash: string;
  /** The pinned package=version list. */
  pins: string[];
  peers: string[];
  builtAt: string;
  buildSeconds: number;
  /** Every package dpkg installed in the root, name → exact version. */
  installed: Record<string, string>;
}

/** One package of a dpkg status file. */
export interface DpkgPackage {
  package: string;
  version: string;
  status: string;
  architecture?: string;
}

/**
 * The installed packages of a dpkg status file (var/lib/dpkg/status): stanzas separated by blank
 * lines, `Field: value` with continuation lines starting with a space. Only packages whose Status
 * ends in `installed` count.
 */
export function parseDpkgStatus(text: string): Map<string, DpkgPackage> {
  const out = new Map<string, DpkgPackage>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) f.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    const pkg = f.get('package');
    const version = f.get('version');
    const status = f.get('status') ?? '';
    if (!pkg || !version || !/\binstalled$/.test(status)) continue;
    out.set(pkg, { package: pkg, version, status, ...(f.has('architecture') ? { architecture: f.get('architecture')! } : {}) });
  }
  return out;
}

/** The pins a set of installed packages does not satisfy, as `pkg=want (have …)`. */
export function unmetPins(pins: readonly PackagePin[], installed: ReadonlyMap<string, { version: string }> | Readonly<Record<string, string>>): string[] {
  const get = (p: string): string | undefined =>
    installed instanceof Map ? installed.get(p)?.version : (installed as Readonly<Record<string, string>>)[p];
  return pins.filter((p) => get(p.package) !== p.version).map((p) => `${formatPackagePin(p)} (${get(p.package) === undefined ? 'not installed' : `have ${get(p.package)}`})`);
}

export type RootAction = { build: false; reason: string } | { build: true; reason: string };

/**
 * Whether a root must be built: not there, built from other pins, missing a pinned version, or
 * asked for. Pure: the caller reads the stamp.
 */
export function rootAction(root: RootPin, stamp: RootStamp | undefined, rebuild = false): RootAction {
  if (rebuild) return { build: true, reason: 'rebuild asked for' };
  if (!stamp) return { build: true, reason: `no root for ${root.suite} yet` };
  if (stamp.pinHash !== rootPinHash(root)) {
    const was = new Set(stamp.pins);
    const now = root.packages.map(formatPackagePin);
    const changed = [...now.filter((p) => !was.has(p)), ...stamp.pins.filter((p) => !now.includes(p)).map((p) => `-${p}`)];
    const mirror = stamp.mirror !== root.mirror ? [`mirror ${root.mirror}`] : [];
    return { build: true, reason: `the pins changed (${[...mirror, ...changed].join(', ') || 'suite'})` };
  }
  const unmet = unmetPins(root.packages, stamp.installed);
  if (unmet.length) return { build: true, reason: `the root lacks ${unmet.join(', ')}` };
  return { build: false, reason: `up to date (built ${stamp.builtAt})` };
}

/** The stamp of a built root, or undefined when there is none (or it is unreadable). */
export function readStamp(dir: string): RootStamp | undefined {
  try {
    const s = JSON.parse(readFileSync(join(dir, STAMP_FILE), 'utf8')) as RootStamp;
    return typeof s.pinHash === 'string' && s.installed && typeof s.installed === 'object' ? s : undefined;
  } catch {
    return undefined;
  }
}

/** The packages dpkg installed in a root, read from its own status file. */
export function rootInstalled(dir: string): Map<string, DpkgPackage> {
  const file = join(dir, 'var', 'lib', 'dpkg', 'status');
  if (!existsSync(file)) throw new PeerError(`${file}: no dpkg status (not a Debian root)`);
  return parseDpkgStatus(readFileSync(file, 'utf8'));
}

/** The argv of mmdebstrap for a root (pure, so specs can check it). */
export function mmdebstrapArgs(root: RootPin, target: string): string[] {
  return [
    '--variant=apt',
    `--aptopt=${NO_VALID_UNTIL}`,
    `--include=${root.packages.map(formatPackagePin).join(',')}`,
    root.suite,
    target,
    root.mirror,
  ];
}

/** A short reason from apt's or mmdebstrap's output: its E: lines, with what to do when a pin vanished. */
export function aptFailure(output: string, what: string): string {
  const errors = output.split('\n').map((l) => l.trim()).filter((l) => /^(E:|W: Unable|mmdebstrap: error)/.test(l));
  // mmdebstrap repeats the failed apt-get command line in full: the first E: lines say it already
  const lines = (errors.length ? errors : output.trim().split('\n').slice(-3)).map((l) => (l.length > 160 ? `${l.slice(0, 157)}...` : l));
  const gone = /Version '[^']+' for '[^']+' was not found|Unable to locate package|has no installation candidate/.test(output);
  const hint = gone
    ? ' — a pinned version is no longer in the archive (sid and backports move on): `svmconf peers --latest` shows what the suites carry now; update runner/peers/pins.yaml (docs/peers.md "Adding a version")'
    : '';
  return `${what} failed: ${[...new Set(lines)].slice(0, 4).join(' | ')}${hint}`;
}

async function which(file: string): Promise<boolean> {
  const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', file], { reject: false });
  return r.exitCode === 0;
}

/**
 * Build (or rebuild) one root with mmdebstrap; returns its stamp. Throws PeerError with what to do
 * when mmdebstrap is missing, the archive lacks a pinned version, or the root does not hold the
 * pinned versions afterwards.
 */
export async function buildRoot(root: RootPin, dir = PEERS_DIR, log: (s: string) => void = () => {}): Promise<RootStamp> {
  if (!(await which(MMDEBSTRAP))) throw new PeerError(MMDEBSTRAP_MISSING);
  await mkdir(dir, { recursive: true });
  const final = rootDir(root.suite, dir);
  const tmp = join(dir, `.${root.suite}.tmp-${process.pid}`);
  const old = join(dir, `.${root.suite}.old-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  const args = mmdebstrapArgs(root, tmp);
  log(`peers: mmdebstrap ${args.join(' ')}`);
  const t0 = Date.now();
  const r = await execa(MMDEBSTRAP, args, { reject: false, all: true, stdin: 'ignore' });
  const seconds = (Date.now() - t0) / 1000;
  if (r.exitCode !== 0) {
    await rm(tmp, { recursive: true, force: true });
    throw new PeerError(aptFailure(String(r.all ?? ''), `mmdebstrap of the ${root.suite} root`));
  }
  const installed = rootInstalled(tmp);
  const unmet = unmetPins(root.packages, installed);
  if (unmet.length) {
    await rm(tmp, { recursive: true, force: true });
    throw new PeerError(`the ${root.suite} root does not hold the pinned versions: ${unmet.join(', ')}`);
  }
  const stamp: RootStamp = {
    suite: root.suite,
    mirror: root.mirror,
    pinHash: rootPinHash(root),
    pins: root.packages.map(formatPackagePin),
    peers: root.peers,
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round(seconds * 10) / 10,
    installed: Object.fromEntries([...installed.values()].sort((a, b) => (a.package < b.package ? -1 : 1)).map((p) => [p.package, p.version])),
  };
  await writeFile(join(tmp, STAMP_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
  // swap: the old root moves aside first, so the final name always holds a complete root or none
  if (existsSync(final)) await rename(final, old);
  await rename(tmp, final);
  await rm(old, { recursive: true, force: true });
  log(`peers: ${root.suite} root built in ${stamp.buildSeconds} s (${Object.keys(stamp.installed).length} packages)`);
  return stamp;
}

/** Build the root if rootAction says so; returns its stamp and whether it was built. */
export async function ensureRoot(root: RootPin, o: { rebuild?: boolean; dir?: string; log?: (s: string) => void } = {}): Promise<{ stamp: RootStamp; built: boolean; reason: string }> {
  const dir = o.dir ?? PEERS_DIR;
  const action = rootAction(root, readStamp(rootDir(root.suite, dir)), o.rebuild);
  if (!action.build) return { stamp: readStamp(rootDir(root.suite, dir))!, built: false, reason: action.reason };
  o.log?.(`peers: building the ${root.suite} root: ${action.reason}`);
  return { stamp: await buildRoot(root, dir, o.log), built: true, reason: action.reason };
}
