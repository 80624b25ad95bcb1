// The pin file runner/peers/pins.yaml (docs/peers.md): every peer version svmconf installs beside
// the host's packages, with its Debian suite and exact package versions. This module reads and
// checks it, and groups the peers into what gets built: one root per suite for the emulators
// (runner/peers/roots.ts) and one download per kernel (runner/peers/kernels.ts).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { ROOT } from '../../generator/index.ts';

export const PINS_FILE = join(ROOT, 'runner', 'peers', 'pins.yaml');

/** What a peer is: an emulator run from a root, or a kernel for the TCG host. */
export type PeerKind = 'qemu' | 'bochs' | 'linux';
export const PEER_KINDS: readonly PeerKind[] = ['qemu', 'bochs', 'linux'];

export interface PackagePin {
  package: string;
  version: string;
}

export interface PeerPin {
  /** `<kind>@<version>`, e.g. qemu@11.1. */
  name: string;
  kind: PeerKind;
  /** The version part of the name (11.1). */
  short: string;
  suite: string;
  packages: PackagePin[];
}

export interface Pins {
  mirror: string;
  peers: PeerPin[];
}

/** A root: the emulator peers of one suite, installed together. */
export interface RootPin {
  suite: string;
  mirror: string;
  /** The peers it holds, in pin-file order. */
  peers: string[];
  /** The union of their packages, sorted by name. */
  packages: PackagePin[];
}

export class PeerError extends Error {}

/** Numeric order of two pin versions (`short`, digits and dots as the pin file checks): 11.1 after 9.2. */
export function compareShortVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** `name=version` → a PackagePin; undefined when it is not of that form. */
export function parsePackagePin(text: string): PackagePin | undefined {
  const m = /^([a-z0-9][a-z0-9+.-]+)=(\S+)$/.exec(text.trim());
  return m ? { package: m[1]!, version: m[2]! } : undefined;
}

export const formatPackagePin = (p: PackagePin): string => `${p.package}=${p.version}`;

/** Parse and check pin-file text; errors name `file:line`. */
export function parsePins(text: string, file = 'runner/peers/pins.yaml'): Pins {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const at = (n: Node | null | undefined): string => {
    const off = n?.range?.[0];
    return off === undefined ? file : `${file}:${lc.linePos(off).line}`;
  };
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new PeerError(`${file}:${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`);
  }
  const top = doc.contents;
  if (!isMap(top)) throw new PeerError(`${at(top)}: expected a mapping with mirror: and peers:`);
  for (const item of top.items) {
    const key = String((item.key as { value?: unknown } | null)?.value ?? item.key);
    if (key !== 'mirror' && key !== 'peers') throw new PeerError(`${at(item.key as Node)}: unknown key ${key} (expected mirror, peers)`);
  }
  const mirror = top.get('mirror');
  if (typeof mirror !== 'string' || !/^https?:\/\//.test(mirror)) throw new PeerError(`${at(top)}: mirror: must be an http(s) URL of a Debian archive`);
  const seq = top.get('peers', true) as Node | undefined;
  if (!isSeq(seq)) throw new PeerError(`${at(seq ?? top)}: peers: must be a list`);
  const peers: PeerPin[] = [];
  const names = new Set<string>();
  for (const node of seq.items as Node[]) {
    if (!isMap(node)) throw new PeerError(`${at(node)}: each peer is a mapping with name, suite, packages`);
    for (const item of node.items) {
      const key = String((item.key as { value?: unknown } | null)?.value ?? item.key);
      if (!['name', 'suite', 'packages'].includes(key)) throw new PeerError(`${at(item.key as Node)}: unknown key ${key} (expected name, suite, packages)`);
    }
    const name = node.get('name');
    const suite = node.get('suite');
    const pkgs = node.get('packages', true) as Node | undefined;
    if (typeof name !== 'string') throw new PeerError(`${at(node)}: name: missing`);
    const m = /^([a-z]+)@(\d+(?:\.\d+)*)$/.exec(name);
    if (!m || !PEER_KINDS.includes(m[1] as PeerKind)) throw new PeerError(`${at(node)}: name ${name}: expected <kind>@<version> with kind ${PEER_KINDS.join(', ')} (e.g. qemu@11.1)`);
    if (names.has(name)) throw new PeerError(`${at(node)}: ${name} is pinned twice`);
    names.add(name);
    if (typeof suite !== 'string' || !/^[a-z][a-z0-9-]*$/.test(suite)) throw new PeerError(`${at(node)}: ${name}: suite: missing or not a Debian suite name`);
    if (!isSeq(pkgs) || pkgs.items.length === 0) throw new PeerError(`${at(pkgs ?? node)}: ${name}: packages: must be a non-empty list of package=version`);
    const packages: PackagePin[] = [];
    for (const p of pkgs.items as Node[]) {
      const v = (p as { value?: unknown }).value;
      const pin = typeof v === 'string' ? parsePackagePin(v) : undefined;
      if (!pin) throw new PeerError(`${at(p)}: ${name}: ${String(v)}: expected package=version (an exact Debian version)`);
      packages.push(pin);
    }
    peers.push({ name, kind: m[1] as PeerKind, short: m[2]!, suite, packages });
  }
  const pins: Pins = { mirror, peers };
  rootPins(pins); // a package with two versions in one root is an error of the file
  return pins;
}

export function loadPins(file = PINS_FILE): Pins {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PeerError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parsePins(text, file === PINS_FILE ? 'runner/peers/pins.yaml' : file);
}

/** The roots to build: the qemu and bochs peers grouped by suite, in pin-file order. */
export function rootPins(pins: Pins): RootPin[] {
  const bySuite = new Map<string, RootPin>();
  for (const p of pins.peers) {
    if (p.kind === 'linux') continue;
    let r = bySuite.get(p.suite);
    if (!r) bySuite.set(p.suite, (r = { suite: p.suite, mirror: pins.mirror, peers: [], packages: [] }));
    r.peers.push(p.name);
    for (const pkg of p.packages) {
      const had = r.packages.find((x) => x.package === pkg.package);
      if (had && had.version !== pkg.version) {
        throw new PeerError(`runner/peers/pins.yaml: ${pkg.package} is pinned to ${had.version} and ${pkg.version} in the ${p.suite} root (${r.peers.join(', ')}): one root, one version`);
      }
      if (!had) r.packages.push(pkg);
    }
  }
  for (const r of bySuite.values()) r.packages.sort((a, b) => (a.package < b.package ? -1 : 1));
  return [...bySuite.values()];
}

/** The pins a root is built from, as one hash: a change of suite, mirror or any version rebuilds it. */
export function rootPinHash(r: RootPin): string {
  const h = createHash('sha256');
  h.update(`suite ${r.suite}\nmirror ${r.mirror}\n`);
  for (const p of r.packages) h.update(`${formatPackagePin(p)}\n`);
  return h.digest('hex');
}

export function findPeer(pins: Pins, name: string): PeerPin {
  const p = pins.peers.find((x) => x.name === name);
  if (!p) throw new PeerError(`no peer ${name} in runner/peers/pins.yaml (pinned: ${pins.peers.map((x) => x.name).join(', ')})`);
  return p;
}

/** The kernel peer's version directory name: its first package's exact version. */
export const kernelVersion = (p: PeerPin): string => p.packages[0]!.version;
