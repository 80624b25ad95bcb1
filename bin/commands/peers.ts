// `svmconf peers`: install the pinned peers of runner/peers/pins.yaml under build/peers/ (roots by
// mmdebstrap, kernels by apt-get download, both without touching the host's packages) and print
// each with its exact version and where it is. --check installs nothing and says what is missing;
// --rebuild builds everything again; --latest shows what the suites carry now (for the next pin).

import type { Command } from 'commander';
import { ensureKernel, aptUpdate, latestVersions } from '../../runner/peers/kernels.ts';
import { peerStatuses, peerVersion, type PeerStatus } from '../../runner/peers/launch.ts';
import { kernelVersion, loadPins, PeerError, rootPins, type Pins } from '../../runner/peers/pins.ts';
import { KERNEL_METAPACKAGE } from '../../runner/tcghost/image.ts';
import { ensureRoot } from '../../runner/peers/roots.ts';
import { EXIT, shownPath, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('peers')
    .description('install the pinned peer versions of runner/peers/pins.yaml under build/peers/ (QEMU and Bochs roots by mmdebstrap, TCG-host kernels by apt-get download; the host\'s packages untouched) and print each with its exact version')
    .option('--check', 'install nothing: print each peer, installed or missing and why (exit 2 when one is missing)')
    .option('--rebuild', 'build every root and download every kernel again')
    .option('--only <names>', 'only these peers (comma-separated, e.g. qemu@11.1,linux@7.3)')
    .option('--latest', 'print the newest version of each pinned package in each suite (the archive now), to write the next pin')
    .option('--json', 'machine-readable output')
    .action(async (o: PeersOptions) => setCode(await peers(o)));
}

interface PeersOptions {
  check?: boolean;
  rebuild?: boolean;
  only?: string;
  latest?: boolean;
  json?: boolean;
}

export async function peers(o: PeersOptions): Promise<number> {
  try {
    return await run(o);
  } catch (e) {
    if (e instanceof PeerError) {
      process.stderr.write(`svmconf peers: ${e.message}\n`);
      return EXIT.ERROR;
    }
    throw e;
  }
}

async function run(o: PeersOptions): Promise<number> {
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const pins = selected(loadPins(), o.only);
  if (o.latest) return latest(pins, log);
  if (!o.check) {
    for (const r of rootPins(pins)) {
      const res = await ensureRoot(r, { rebuild: o.rebuild, log });
      if (!res.built) log(`peers: ${r.suite} root: ${res.reason}`);
    }
    let updated = false;
    const update = async (): Promise<void> => {
      if (!updated) await aptUpdate(pins, undefined, log);
      updated = true;
    };
    for (const k of pins.peers.filter((p) => p.kind === 'linux')) await ensureKernel(k, pins, { rebuild: o.rebuild, log, update });
  }
  const statuses = peerStatuses(pins);
  const versions = new Map<string, string>();
  for (const s of statuses) {
    if (s.launch) {
      try {
        versions.set(s.name, await peerVersion(s.launch));
      } catch (e) {
        if (!(e instanceof PeerError)) throw e;
        s.installed = false;
        s.reason = e.message;
      }
    } else if (s.kernel) versions.set(s.name, `Linux ${s.kernel.manifest.release}`);
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(statuses.map((s) => ({ name: s.name, kind: s.kind, suite: s.suite, installed: s.installed, version: versions.get(s.name), packages: s.packages, where: s.where, reason: s.reason, ...(s.launch ? { launch: s.launch } : {}) })), null, 2)}\n`);
  } else for (const s of statuses) process.stdout.write(line(s, versions.get(s.name)));
  return statuses.every((s) => s.installed) ? EXIT.AGREE : EXIT.ERROR;
}

function line(s: PeerStatus, version: string | undefined): string {
  if (!s.installed) return `${s.name}: missing — ${s.reason}; install: ${s.install}\n`;
  const pkgs = Object.entries(s.packages).map(([p, v]) => `${p}=${v}`).join(' ');
  return `${s.name}: ${version ?? '?'} — ${pkgs} — ${shownPath(s.where)}\n`;
}

function selected(pins: Pins, only: string | undefined): Pins {
  if (!only) return pins;
  const names = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !pins.peers.some((p) => p.name === n));
  if (unknown.length) throw new PeerError(`--only: no peer ${unknown.join(', ')} in runner/peers/pins.yaml (pinned: ${pins.peers.map((p) => p.name).join(', ')})`);
  // a root is built from all of its suite's pins, so selecting one emulator peer keeps its root whole
  const suites = new Set(pins.peers.filter((p) => names.includes(p.name) && p.kind !== 'linux').map((p) => p.suite));
  return { ...pins, peers: pins.peers.filter((p) => names.includes(p.name) || (p.kind !== 'linux' && suites.has(p.suite))) };
}

async function latest(pins: Pins, log: (s: string) => void): Promise<number> {
  await aptUpdate(pins, undefined, log);
  // kernel packages carry their ABI in the name: the suite's metapackage names its current kernel
  const names = [...new Set([...pins.peers.flatMap((p) => p.packages.map((x) => x.package)), KERNEL_METAPACKAGE])];
  const found = await latestVersions(names);
  for (const p of pins.peers) {
    process.stdout.write(`${p.name} (${p.suite}):\n`);
    for (const x of p.packages) {
      const bySuite = found.get(x.package);
      const now = bySuite?.get(p.suite);
      const elsewhere = bySuite ? [...bySuite].filter(([s]) => s !== p.suite).map(([s, v]) => `${s} ${v}`).join(', ') : '';
      process.stdout.write(`  ${x.package}: pinned ${x.version}; ${p.suite} has ${now ?? 'none'}${now && now !== x.version ? ' (differs: update the pin)' : ''}${elsewhere ? `; ${elsewhere}` : ''}\n`);
    }
    if (p.kind === 'linux') {
      const meta = found.get(KERNEL_METAPACKAGE)?.get(p.suite);
      process.stdout.write(`  ${KERNEL_METAPACKAGE} (the suite's current kernel): ${meta ?? 'none'}${meta && meta !== kernelVersion(p) ? ' (differs: a newer kernel package)' : ''}\n`);
    }
  }
  return EXIT.AGREE;
}
