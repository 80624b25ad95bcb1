// `svmconf repro`: one case on one backend as a folder that reproduces it without svmconf
// (docs/repro.md). This module gathers what the bundle holds — the case's own kernel, the
// observed record (from a results.json, or a run now beside the model), the comparison under the
// registry, the backend's command line from the backend module's own pure functions — and writes
// the folder atomically; report/repro.ts renders its text.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { cHeader } from '../arch/c-header.ts';
import { familyOf } from '../core/columns.ts';
import type { BackendInfo, Case, CaseResult, Kernel, Results } from '../core/types.ts';
import { buildKernels, ROOT } from '../generator/index.ts';
import { GUEST_RAM_MIB } from '../generator/layout.ts';
import { BOCHS_CACHE_DIR, BOCHS_FLAVOURS, bochsrc, commandLine, DEBUGGER_SCRIPT, kernelFloppy } from '../runner/backends/bochs.ts';
import { kvmHelperArgs, kvmNativeBackend, type KvmBackend } from '../runner/backends/kvm.ts';
import { KVM_TCG_BACKEND, kvmTcgBackend, kvmTcgPeerBackends, tcgColumnFiles } from '../runner/backends/kvm-tcg.ts';
import { DEFAULT_BIOS, defaultCpuModel, qemuArgs, type QemuAccel } from '../runner/backends/qemu.ts';
import { formatCpuid, guestCpuid } from '../runner/kvm-cpuid.ts';
import { peerLaunch } from '../runner/peers/launch.ts';
import { findPeer, loadPins, type PeerPin } from '../runner/peers/pins.ts';
import { tcgHostArgs } from '../runner/tcghost/host.ts';
import { compareResults } from '../report/compare.ts';
import type { Deviation } from '../report/deviations.ts';
import { loadFindings, type Finding } from '../report/findings.ts';
import {
  bundleName, citations, markdownSection, renderChecks, renderExpected, renderManifest, renderObserved, renderReport, renderScript,
  scriptName, verdictText, type BundleFile, type PeerNote, type ReproInput, type ReproRun,
} from '../report/repro.ts';
import { readResultsFile, serializeResults, RESULTS_SCHEMA } from '../report/results.ts';
import { UsageError } from './errors.ts';
import { runSuite, type RunProgress } from './run.ts';
import { loadRegistry, selectCases } from './select.ts';

export interface ReproOptions {
  caseId: string;
  backend: string;
  /** The bundle's folder (absolute); default out/repro/<sanitized case id>-<backend>/. */
  out?: string;
  /** A results.json holding the case on the backend: its record is the observed one (no run). */
  results?: string;
  /** Replace a folder that is not empty. */
  force?: boolean;
  templates: string[];
  deviations?: string[];
  profile?: string;
  /** Seconds without protocol output before the live run's boot is TIMEOUT. */
  timeout: number;
  /** The script's bound on its boot (seconds, default 120). */
  scriptTimeout?: number;
  signal?: AbortSignal;
  /** Where notes go as the bundle is made (default: nowhere). */
  log?: (line: string) => void;
}

export interface ReproOutcome {
  dir: string;
  files: BundleFile[];
  observed: CaseResult;
  verdict: string;
  script: string;
}

/** Which kind of script a column gets, from its family; undefined: repro cannot write one. */
export function runKind(backend: string): ReproRun['kind'] | undefined {
  const f = familyOf(backend);
  if (f === 'qemu-tcg' || f === 'qemu-kvm') return 'qemu';
  if (Object.values(BOCHS_FLAVOURS).some((s) => s.name === f)) return 'bochs';
  if (f === 'kvm') return 'kvm';
  if (f === KVM_TCG_BACKEND) return 'kvm-tcg';
  return undefined;
}

export const DEFAULT_SCRIPT_TIMEOUT = 120;

/** The svmconf commit, `-dirty` when the working tree has changes; `unknown` outside a git checkout. */
export function svmconfCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

const quiet: RunProgress = { caseDone: () => {}, note: () => {}, end: () => {} };

/** The one case `id` names exactly (a glob is refused: a bundle holds one case). */
async function theCase(id: string, templates: string[]): Promise<Case> {
  const cases = await selectCases({ templates, filter: [id] });
  const c = cases.find((x) => x.id === id);
  if (!c) throw new UsageError(`repro takes one case id; ${id} matches ${cases.length} cases (${cases.slice(0, 3).map((x) => x.id).join(', ')}${cases.length > 3 ? ', …' : ''})`);
  return c;
}

/** A folder that may be written: absent, empty, or (with --force) to be replaced. */
async function checkTarget(dir: string, force: boolean | undefined): Promise<void> {
  const s = await stat(dir).catch(() => undefined);
  if (!s) return;
  if (!s.isDirectory()) throw new UsageError(`--out ${dir}: not a folder`);
  if ((await readdir(dir)).length > 0 && !force) throw new UsageError(`--out ${dir} is not empty (give --force to replace it)`);
}

/** A results.json must hold the case, a result of the backend for it, and the backend's description. */
function checkResults(r: Results, source: string, c: Case, backend: string): void {
  const outcome = r.cases.find((x) => x.id === c.id);
  if (!outcome) throw new UsageError(`${source} has no case ${c.id}`);
  if (!outcome.results[backend]) throw new UsageError(`${source} has no result of ${backend} for ${c.id} (backends there: ${Object.keys(outcome.results).join(', ')})`);
  if (!r.backends.some((b) => b.name === backend)) throw new UsageError(`${source} does not describe the backend ${backend}`);
}

/** The case alone on the backend and its reference: the results that the bundle's comparison is made of. */
function oneCase(r: Results, c: Case, backend: string): { mini: Results; info: BackendInfo; refInfo: BackendInfo } {
  const info = r.backends.find((b) => b.name === backend)!;
  const refName = info.reference ?? 'model';
  const refInfo = r.backends.find((b) => b.name === refName);
  const outcome = r.cases.find((x) => x.id === c.id)!;
  if (!refInfo || !outcome.results[refName]) {
    throw new UsageError(`the results have no result of ${refName} (the reference of ${backend}) for ${c.id}: run without --results, or give a results.json of a run with ${refName}`);
  }
  const mini: Results = {
    schema: RESULTS_SCHEMA,
    generated: r.generated,
    host: r.host,
    backends: [refInfo, info],
    layouts: { [c.template.id]: r.layouts[c.template.id] ?? c.template.record },
    cases: [{ ...outcome, results: { [refName]: outcome.results[refName]!, [backend]: outcome.results[backend]! } }],
  };
  return { mini, info, refInfo };
}

/** Who the report is about, for its Subject line. */
export function componentOf(info: BackendInfo): string {
  const f = familyOf(info.family ?? info.name);
  const v = info.version ?? info.name;
  if (f === 'qemu-tcg') return `${v} TCG`;
  if (f === 'qemu-kvm') return `${v} with KVM`;
  const bochs = Object.values(BOCHS_FLAVOURS).find((s) => s.name === f);
  if (bochs) return `${v} cpu model ${bochs.cpuModel}`;
  const linux = /Linux (\S+?),/.exec(v)?.[1];
  if (f === KVM_TCG_BACKEND) return `KVM nested SVM (Linux ${linux ?? '?'}) on ${info.emulator?.version ?? 'QEMU'} TCG`;
  if (f === 'kvm') return `KVM nested SVM (Linux ${linux ?? '?'})`;
  return v;
}

/** How a pinned emulator peer runs from a root, with the root written `${PEER_ROOT}`. */
function peerNote(pin: PeerPin, packages: Record<string, string> | undefined): PeerNote {
  const l = peerLaunch(pin, '${PEER_ROOT}');
  return { pin: pin.name, packages: packages ?? Object.fromEntries(pin.packages.map((p) => [p.package, p.version])), file: l.file, args: l.args, env: l.env, builtAt: `build/peers/${pin.suite}` };
}

/** The guest CPUID a kvm or kvm-tcg boot hands the helper (the backend's own probe), or undefined when it cannot probe. */
async function helperCpuid(backend: string, kernel: Kernel, log: (s: string) => void): Promise<string | undefined> {
  const b: KvmBackend | undefined = backend === 'kvm' ? kvmNativeBackend() : backend === KVM_TCG_BACKEND ? kvmTcgBackend() : kvmTcgPeerBackends().find((x) => x.name === backend);
  if (!b) return undefined;
  const info = await b.probe();
  const p = b.kvm();
  if (!info.available || !p) {
    log(`repro: ${backend} cannot be probed here (${info.reason}): cpuid.txt left out, the script lets the helper ask KVM`);
    return undefined;
  }
  return formatCpuid(guestCpuid(p.cpuid, kernel.cpu));
}

interface Extra {
  name: string;
  data: string | Uint8Array;
  what: string;
  mode?: number;
}

/** The backend's command line and the files it needs beside the kernel. */
async function backendRun(kind: ReproRun['kind'], info: BackendInfo, kernel: Kernel, log: (s: string) => void): Promise<{ run: ReproRun; files: Extra[] }> {
  const pins = loadPins();
  const pin = info.peer ? findPeer(pins, info.peer) : undefined;
  if (kind === 'qemu') {
    const accel: QemuAccel = familyOf(info.family ?? info.name) === 'qemu-kvm' ? 'kvm' : 'tcg';
    const args = qemuArgs({ accel, cpuModel: defaultCpuModel(accel), cpu: kernel.cpu, elf: 'kernel.elf', start: 0, end: 1, memoryMib: GUEST_RAM_MIB, enforce: true, bios: DEFAULT_BIOS });
    return { run: { kind, args, ...(pin ? { peer: peerNote(pin, info.packages) } : {}) }, files: [] };
  }
  if (kind === 'bochs') {
    const spec = Object.values(BOCHS_FLAVOURS).find((s) => s.name === familyOf(info.family ?? info.name))!;
    const floppy = await kernelFloppy(kernel, commandLine(0, 1), BOCHS_CACHE_DIR);
    return {
      run: { kind, ...(pin ? { peer: peerNote(pin, info.packages) } : {}) },
      files: [
        { name: 'kernel.bin', data: await readFile(kernel.bin), what: 'the kernel as a flat image (what the boot sector loads to 1 MiB)' },
        { name: 'floppy.img', data: floppy, what: 'the 1.44 MB floppy Bochs boots: boot sector (runner/bochs/boot.S, command line start=0 end=1) and kernel.bin' },
        { name: 'bochsrc', data: bochsrc({ cpuModel: spec.cpuModel, floppy: 'floppy.img', com1: 'serial.log', log: 'bochs.log', megs: GUEST_RAM_MIB }), what: `Bochs' configuration: cpu model ${spec.cpuModel}, COM1 to serial.log` },
        { name: 'dbg.rc', data: DEBUGGER_SCRIPT, what: "the debugger's script: continue, then quit" },
      ],
    };
  }
  const helperFor = (elf: string): string[] => kvmHelperArgs({ elf, start: 0, end: 1, memoryMib: GUEST_RAM_MIB });
  const cpuid = await helperCpuid(info.name, kernel, log);
  const cpuidFile: Extra[] = cpuid ? [{ name: 'cpuid.txt', data: cpuid, what: "the guest's CPUID the helper reads on stdin (function index flags eax ebx ecx edx)" }] : [];
  if (kind === 'kvm') {
    // the helper's sources, so that the script builds it as `make native` does (no svmconf needed)
    const dir = join(ROOT, 'native', 'kvm');
    const sources = (await readdir(dir)).filter((f) => f.endsWith('.c') || f.endsWith('.h')).sort();
    const native: Extra[] = await Promise.all(sources.map(async (f) => ({ name: `native/${f}`, data: await readFile(join(dir, f)), what: `svmconf's native KVM runner: native/kvm/${f}` })));
    native.push({ name: 'native/svmconf-arch.h', data: cHeader(), what: "the helper's constants, generated from arch/ (arch/c-header.ts)" });
    return { run: { kind, helperArgs: helperFor('kernel.elf') }, files: [...cpuidFile, ...native] };
  }
  const tcg = await tcgColumnFiles(info.name, pins);
  const qemuPin = tcg.qemuPeer;
  const run: ReproRun = {
    kind,
    qemuArgs: tcgHostArgs({ vmlinuz: 'vmlinuz', initrd: 'initrd.gz', spool: 'spool', consoleLog: 'console.log' }),
    helperArgs: helperFor('/spool/0.req/kernel.elf'),
    qemuVersion: info.emulator?.version ?? 'QEMU',
    kernel: { release: tcg.image.manifest.kernelRelease, debs: [tcg.image.manifest.kernelPackage, tcg.image.manifest.busyboxPackage].map(debPin) },
    ...(qemuPin ? { peer: peerNote(qemuPin, undefined) } : {}),
  };
  if (!cpuid) {
    // the TCG host's KVM answers the same on every machine, but only a probe of it says what: without one, no bundle
    throw new UsageError(`${info.name}: the TCG host could not be probed for its CPUID, which the bundle needs`);
  }
  return {
    run,
    files: [
      ...cpuidFile,
      { name: 'vmlinuz', data: await readFile(tcg.image.vmlinuz), what: `the TCG host's kernel, ${tcg.image.manifest.kernelPackage}` },
      { name: 'initrd.gz', data: await readFile(tcg.image.initrd), what: `the TCG host's initramfs (busybox ${tcg.image.manifest.busyboxPackage}, modules ${tcg.image.manifest.modules.map((m) => m.file.replace(/\.ko$/, '')).join(' ')}, the helper, runner/tcghost/init.sh)` },
    ],
  };
}

/** `linux-image-6.1.0-57-amd64_6.1.192-3_amd64` (a .deb's base name, `:` written %3a) → `linux-image-6.1.0-57-amd64=6.1.192-3`. */
export function debPin(base: string): string {
  const [name, version] = base.split('_');
  return version === undefined ? base : `${name}=${decodeURIComponent(version)}`;
}

/** The sections of the repository's docs a checks text cites (docs/svm-rules.md "…"), with their text. */
async function docSections(checks: string): Promise<ReproInput['docSections']> {
  const out: ReproInput['docSections'] = [];
  for (const ref of citations(checks).docs) {
    const m = /^(docs\/[a-z0-9/-]+\.md) "([^"]+)"$/.exec(ref);
    if (!m) continue;
    const text = await readFile(join(ROOT, m[1]!), 'utf8').catch(() => undefined);
    out.push({ ref, text: text === undefined ? undefined : markdownSection(text, m[2]!) });
  }
  return out;
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const size = (data: string | Uint8Array): number => (typeof data === 'string' ? Buffer.byteLength(data) : data.length);

/** Write the bundle into a temporary folder beside `dir`, then rename it into place (replacing `dir` only with force). */
async function writeBundle(dir: string, files: Extra[], force: boolean | undefined): Promise<void> {
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(join(parent, `.${basename(dir)}.tmp-`));
  try {
    // mkdtemp makes it private; the bundle is meant to be shared
    await chmod(tmp, 0o755);
    for (const f of files) {
      const p = join(tmp, f.name);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, f.data);
      if (f.mode !== undefined) await chmod(p, f.mode);
    }
    await checkTarget(dir, force);
    if (existsSync(dir)) {
      const old = join(parent, `.${basename(dir)}.old-${process.pid}-${randomBytes(3).toString('hex')}`);
      await rename(dir, old);
      await rename(tmp, dir);
      await rm(old, { recursive: true, force: true });
    } else await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function makeRepro(o: ReproOptions): Promise<ReproOutcome> {
  const log = o.log ?? (() => {});
  const kind = runKind(o.backend);
  if (!kind) {
    throw new UsageError(`repro writes a script for the qemu-tcg, qemu-kvm, bochs-*, kvm and kvm-tcg columns (and their pinned versions); ${o.backend} is not one${familyOf(o.backend).startsWith('model') ? ' (the model is what a bundle is compared with)' : ''}`);
  }
  const c = await theCase(o.caseId, o.templates);
  const dir = resolve(o.out ?? join(ROOT, 'out', 'repro', bundleName(c.id, o.backend)));
  await checkTarget(dir, o.force);
  const deviations: Deviation[] = await loadRegistry({ files: o.deviations ?? [], templateDirs: o.templates });
  // the case alone in its kernel, at index 0 (the same kernel a one-case run builds)
  const [kernel] = await buildKernels([c], { extraDirs: o.templates });
  if (!kernel || kernel.cases.length !== 1) throw new Error(`the kernel of ${c.id} holds ${kernel?.cases.length ?? 0} cases`);

  let all: Results;
  let source: string;
  if (o.results) {
    all = await readResultsFile(o.results);
    checkResults(all, o.results, c, o.backend);
    // there the case ran in its template's batch kernel; the bundle's kernel holds it alone
    source = `${o.results} (a run where the case ran in its template's batch kernel)`;
  } else {
    log(`repro: running ${c.id} on ${o.backend} and the model`);
    const out = await mkdtemp(join(tmpdir(), 'svmconf-repro-run-'));
    try {
      const r = await runSuite({
        templates: o.templates, filter: [c.id], backend: [o.backend, 'model'], jobs: 1, timeout: o.timeout, out,
        ...(o.profile !== undefined ? { profile: o.profile } : {}), ...(o.deviations ? { deviations: o.deviations } : {}), ...(o.signal ? { signal: o.signal } : {}),
      }, () => quiet);
      all = r.results;
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    source = `a run of svmconf repro (${all.generated}, ${o.timeout} s idle timeout)`;
  }
  const { mini, info, refInfo } = oneCase(all, c, o.backend);
  const comparison = compareResults(mini, { deviations }).cases[0]!;
  const observed = mini.cases[0]!.results[o.backend]!;
  const expected = mini.cases[0]!.results[refInfo.name];
  if (observed.status !== 'OK') log(`repro: ${o.backend} gave ${observed.status}${observed.reason ? ` (${observed.reason})` : ''}; the bundle records that status`);
  const { run, files: extra } = await backendRun(kind, info, kernel, log);
  const ids = new Set(comparison.deviations.map((d) => d.id));
  for (const d of comparison.diffs) for (const k of d.known) if (k.backend === o.backend) ids.add(k.id);
  const entries = deviations.filter((d) => ids.has(d.id));
  const register = join(ROOT, 'expected', 'findings.yaml');
  const findings: Finding[] = existsSync(register) ? await loadFindings(register, deviations, 'expected/findings.yaml', { complete: false }) : [];
  const input: ReproInput = {
    case: { id: c.id, params: c.params, template: { id: c.template.id, title: c.template.title, checks: c.template.checks, displayPath: c.template.displayPath, record: c.template.record } },
    backend: info,
    reference: refInfo,
    component: componentOf(info),
    observed,
    expected,
    comparison,
    entries,
    findings: findings.filter((f) => entries.some((e) => e.finding === f.id)),
    commit: svmconfCommit(),
    source,
    docSections: await docSections(c.template.checks),
    run,
    timeoutSeconds: o.scriptTimeout ?? DEFAULT_SCRIPT_TIMEOUT,
  };
  const script = scriptName(o.backend);
  const files: Extra[] = [
    { name: script, data: renderScript(input), what: `boots ${o.backend} on kernel.elf and compares the case's record with observed.record`, mode: 0o755 },
    { name: 'kernel.elf', data: await readFile(kernel.elf), what: `the multiboot kernel holding only ${c.id} (case 0)` },
    { name: 'kernel.map', data: await readFile(kernel.map), what: "the kernel's symbol map (labels of the case's code)" },
    ...extra,
    { name: 'observed.record', data: observed.record ? `${observed.record}\n` : '', what: `${o.backend}'s record as hex (${observed.status})` },
    { name: 'expected.record', data: expected?.record ? `${expected.record}\n` : '', what: `${refInfo.name}'s record as hex` },
    { name: 'observed.txt', data: renderObserved(input), what: `${o.backend}'s record decoded, the fields that differ marked` },
    { name: 'expected.txt', data: renderExpected(input), what: `${refInfo.name}'s record decoded, with the defined bits` },
    { name: 'checks.md', data: renderChecks(input), what: "the template's checks, the manual sections they cite, the case's parameters" },
    { name: 'results.json', data: serializeResults(mini), what: 'the case on the backend and its reference, as svmconf results (docs/results.md)' },
  ];
  const listed = (fs: Extra[]): BundleFile[] => fs.map((f) => ({ name: f.name, bytes: size(f.data), sha256: sha256(f.data), what: f.what }));
  files.push({ name: 'report.txt', data: renderReport(input, listed(files)), what: 'the report, as a mailing list or tracker takes it' });
  const manifest = listed(files);
  files.push({ name: 'MANIFEST', data: renderManifest(input, manifest), what: 'this list' });
  await writeBundle(dir, files, o.force);
  return { dir, files: manifest, observed, verdict: verdictText(input), script };
}
