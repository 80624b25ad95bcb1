// The svmconf command: list, build, run, compare, backends.
//
// Exit codes (README "Exit codes"):
//   0  every case that ran on two or more backends agrees (or differs only by known deviations,
//      expected/deviations.yaml), and nothing crashed
//   1  divergences between backends
//   2  errors: CRASH, TIMEOUT, ERROR results, a template that does not build, a tool missing
//   3  usage: unknown command or option, bad argument

import { axisCounts, formatAxisCounts } from '../report/axes.ts';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { BackendInfo, Case, CaseResult, CpuIdentity, HostInfo, Results } from '../core/types.ts';
import { buildKernels, expandAll, filterCases, loadTemplates, makeRenderer, ROOT, TemplateError, ToolMissingError } from '../generator/index.ts';
import type { Backend } from '../runner/backend.ts';
import { qemuKvmBackend, qemuTcgBackend } from '../runner/backends/qemu.ts';
import { kvmNativeBackend, type KvmBackendOptions } from '../runner/backends/kvm.ts';
import { kvmTcgBackend, stopTcgHost } from '../runner/backends/kvm-tcg.ts';
import { downloadPackages, readyImage, TcgHostImageError } from '../runner/tcghost/image.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { bochsBackends, type BochsBackend } from '../runner/backends/bochs.ts';
import { CONSOLE_BACKEND, consoleBackend, type ConsoleBackend, type ConsoleOptions } from '../runner/backends/console.ts';
import { buildIso } from '../generator/iso.ts';
import { consoleLogBackend, ConsoleLogError, readConsoleLog } from '../runner/backends/console-log.ts';
import { defaultCacheDir } from '../generator/kernel.ts';
import { probeHostInfo } from '../runner/probe.ts';
import { probeSafely, runKernels } from '../runner/schedule.ts';
import { backendCpu, HARDWARE_BACKENDS, parseMachineCpu, runCpu } from '../runner/cpu.ts';
import { classifyCpu, FAMILY_TABLE, familyLabel } from '../model/profiles/families.ts';
import { compareResults, deviationsByCase } from '../report/compare.ts';
import { DeviationError, loadDeviations, type Deviation } from '../report/deviations.ts';
import { renderMarkdown, writeMarkdown } from '../report/markdown.ts';
import { buildResults, readResults, ResultsFormatError, serializeResults, writeFileAtomic, writeResults } from '../report/results.ts';
import { buildMatrix, publishExitCode, PublishError, type PublishInput } from '../report/publish.ts';
import { renderRecordedSection, writePublished } from '../report/publish-render.ts';
import { HW_DIR, readHwFamily, recordHardware, RecordError, type HwRecording } from '../report/hwrecords.ts';
import { printTable } from '../report/table.ts';
import { compareWarmCold } from '../report/warmcold.ts';
import { checkProvenance, diffGolden, EXPECTED_DIR, formatDrift, readGoldenDir, readProvenance, runGolden, writeGolden } from '../report/golden.ts';
import {
  DEFAULT_PROFILE, findProfile, hardwareCpuid, hardwareSvmSwitches, PROFILES, profileNames, svmFeatureNames, withSvmEdx, type Profile,
} from '../model/profile.ts';
import { createProgress } from './progress.ts';
import { allMutantNames, formatKillTable, runMutants, survivors } from '../runner/mutants.ts';
import { isMutantName, type MutantName } from '../model/mutants.ts';

export const EXIT = { AGREE: 0, DIVERGE: 1, ERROR: 2, USAGE: 3 } as const;

/** The console backend's commands: the options, else SVMCONF_CONSOLE_CMD / SVMCONF_BOOT_CMD. */
function consoleOptions(o: { consoleCmd?: string; bootCmd?: string } = {}): ConsoleOptions {
  const consoleCmd = o.consoleCmd ?? process.env.SVMCONF_CONSOLE_CMD;
  const bootCmd = o.bootCmd ?? process.env.SVMCONF_BOOT_CMD;
  return { ...(consoleCmd ? { consoleCmd } : {}), ...(bootCmd ? { bootCmd } : {}) };
}

/** Every backend svmconf knows, in matrix column order. */
export function allBackends(profile: Profile = DEFAULT_PROFILE, console: ConsoleOptions = consoleOptions(), kvm: KvmBackendOptions = {}, consoleLog?: string): Backend[] {
  // a saved console log (parse-log, --console-log) stands in for the live console
  return [modelBackend({ profile }), qemuTcgBackend(), ...bochsBackends(), kvmNativeBackend(kvm), qemuKvmBackend(), consoleLog !== undefined ? consoleLogBackend(consoleLog) : consoleBackend(console)];
}

/** The name of the model column that runs under `profile` as the reference of another backend. */
export function referenceModelName(profile: string): string {
  return `model@${profile}`;
}

/**
 * Backends compared with the model under another profile than the run's (the Bochs flavours,
 * `referenceProfile`): add a model column under that profile, placed after the run's model, and
 * point the backend's `reference` at it; the run's own profile needs no extra column.
 */
export async function withReferenceModels(
  probed: Array<{ backend: Backend; info: BackendInfo }>,
  profile: Profile,
): Promise<Array<{ backend: Backend; info: BackendInfo }>> {
  const extra: Array<{ backend: Backend; info: BackendInfo }> = [];
  const hasModel = probed.some((b) => b.info.name === 'model');
  for (const b of probed) {
    const { referenceProfile: want, referenceSvmEdx } = b.backend as Partial<BochsBackend>;
    if (want === undefined || !b.info.available) continue;
    const reference = referenceSvmEdx === undefined ? profileOption(want) : withSvmEdx(profileOption(want), referenceSvmEdx);
    if (reference === profile && hasModel) {
      b.info.reference = 'model';
      continue;
    }
    const name = referenceModelName(want);
    if (!extra.some((e) => e.info.name === name)) {
      const backend = modelBackend({ profile: reference, name });
      const info = await probeSafely(backend);
      info.reference = name;
      extra.push({ backend, info });
    }
    b.info.reference = name;
  }
  const at = probed.findIndex((b) => b.info.name === 'model') + 1;
  return [...probed.slice(0, at), ...extra, ...probed.slice(at)];
}


class UsageError extends Error {}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function collect(value: string, prior: string[]): string[] {
  return [...prior, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

interface CaseSelection {
  templates: string[];
  filter: string[];
}

async function selectCases(o: CaseSelection): Promise<Case[]> {
  const cases = filterCases(expandAll(await loadTemplates(o.templates)), o.filter);
  if (cases.length === 0) throw new UsageError(`no case matches ${o.filter.length ? o.filter.join(', ') : 'the templates'}`);
  return cases;
}

/** expected/deviations.yaml, or the file given with --deviations (which must then exist). */
async function registry(file: string | undefined): Promise<Deviation[]> {
  const path = resolve(file ?? join(ROOT, 'expected', 'deviations.yaml'));
  const shown = relative(process.cwd(), path) || path;
  return loadDeviations(path, { optional: file === undefined, displayPath: shown.startsWith('..') ? path : shown });
}

/** Known deviations are not divergences: only `diverge` verdicts give exit code 1. */
function exitCodeFor(results: Results, deviations: readonly Deviation[]): number {
  const { summary } = compareResults(results, { deviations });
  if (summary.problems.length > 0) return EXIT.ERROR;
  if (summary.verdicts.diverge > 0 || (results.warmCold?.disagreements.length ?? 0) > 0) return EXIT.DIVERGE;
  return EXIT.AGREE;
}

async function cmdList(o: CaseSelection & { json?: boolean }): Promise<number> {
  const cases = await selectCases(o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(cases.map((c) => ({ id: c.id, template: c.template.id, params: c.params, requires: c.requires })), null, 2)}\n`);
    return EXIT.AGREE;
  }
  const byTemplate = new Map<string, Case[]>();
  for (const c of cases) byTemplate.set(c.template.id, [...(byTemplate.get(c.template.id) ?? []), c]);
  for (const [tid, list] of byTemplate) {
    const t = list[0]!.template;
    const reqs = t.requires.map((r) => `${r.present ? '' : '!'}${r.feature}`).join(' ');
    process.stdout.write(`${tid}  ${list.length} case(s)  ${t.displayPath}${reqs ? `  requires: ${reqs}` : ''}\n  ${t.title}\n`);
    for (const { name, values } of t.matrix) {
      const counts = values.map((v) => `${v}:${list.filter((c) => c.params[name] === v).length}`);
      process.stdout.write(`    ${name}: ${counts.join(' ')}\n`);
    }
    for (const c of list) process.stdout.write(`    ${c.id}\n`);
  }
  process.stdout.write(`${cases.length} case(s) in ${byTemplate.size} template(s); cases per axis value, over all templates:\n`);
  for (const line of formatAxisCounts(axisCounts(cases))) process.stdout.write(`${line}\n`);
  return EXIT.AGREE;
}

async function cmdBuild(o: CaseSelection & { json?: boolean }): Promise<number> {
  const cases = await selectCases(o);
  const kernels = await buildKernels(cases, { extraDirs: o.templates });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(kernels.map((k) => ({ id: k.id, elf: k.elf, bin: k.bin, cpu: k.cpu, cases: k.cases.map((c) => c.id) })), null, 2)}\n`);
  } else {
    for (const k of kernels) process.stdout.write(`${k.id}  ${k.cases.length} case(s)  ${k.elf}\n`);
    process.stdout.write(`${kernels.length} kernel(s), ${cases.length} case(s)\n`);
  }
  return EXIT.AGREE;
}

interface RunOptions extends CaseSelection {
  deviations?: string;
  /** Absent: the default profile, or the family table's profile for the CPU of a hardware backend. */
  profile?: string;
  machineCpu?: string;
  /** The console machine's CPU name (`model name` of its /proc/cpuinfo), for records and their directory. */
  machineName?: string;
  /** A saved console log to read instead of attaching to a console (parse-log). */
  consoleLog?: string;
  backend: string[];
  jobs: number;
  timeout: number;
  out: string;
  json?: boolean;
  consoleCmd?: string;
  bootCmd?: string;
  torture?: boolean;
  tortureEvery?: number;
  tortureControl?: boolean;
}

function profileOption(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new UsageError(`unknown profile ${name} (known: ${profileNames().join(', ')})`);
  return p;
}

/**
 * Backends run only when named: the model under the virtual L0 (model/l0/), and kvm-tcg (the
 * native runner on KVM inside QEMU TCG, runner/backends/kvm-tcg.ts: minutes per suite, and its
 * divergences are KVM's or QEMU's, not yet sorted; README "KVM on the TCG host").
 */
function namedOnlyBackends(profile: Profile, kvm: KvmBackendOptions = {}): Backend[] {
  return [modelBackend({ profile, l0: true }), kvmTcgBackend(kvm)];
}

async function probeAll(
  names: string[],
  profile: Profile = DEFAULT_PROFILE,
  console: ConsoleOptions = consoleOptions(),
  listAll = false,
  kvm: KvmBackendOptions = {},
  consoleLog?: string,
): Promise<Array<{ backend: Backend; info: BackendInfo }>> {
  const known = [...allBackends(profile, console, kvm, consoleLog), ...(names.length ? namedOnlyBackends(profile, kvm) : [])];
  const unknown = names.filter((n) => !known.some((b) => b.name === n));
  if (unknown.length) throw new UsageError(`unknown backend ${unknown.join(', ')} (known: ${known.map((b) => b.name).join(', ')})`);
  // By default the console backend takes part only when a console command (or a saved log) is given.
  const chosen = names.length ? known.filter((b) => names.includes(b.name)) : known.filter((b) => listAll || b.name !== CONSOLE_BACKEND || console.consoleCmd || consoleLog !== undefined);
  const probed = await Promise.all(chosen.map(async (backend) => ({ backend, info: await probeSafely(backend) })));
  return listAll ? probed : withReferenceModels(probed, profile);
}

/**
 * Each backend's CPU (runner/cpu.ts) into its BackendInfo; without --profile, the model follows
 * the profile the family table gives for the CPU of the run's hardware backend (kvm, console), so a
 * hardware run is compared with its own family.
 */
/** The kvm and kvm-tcg backends' options from `run`'s. */
function kvmOptions(o: RunOptions): KvmBackendOptions {
  if (!o.torture) {
    if (o.tortureEvery !== undefined || o.tortureControl) throw new UsageError(`${o.tortureControl ? '--torture-control' : '--torture-every'} needs --torture`);
    return {};
  }
  return { torture: true, ...(o.tortureEvery !== undefined ? { tortureEvery: o.tortureEvery } : {}), ...(o.tortureControl ? { tortureControl: true } : {}) };
}

async function probeWithCpus(o: RunOptions, host: HostInfo): Promise<{ backends: Array<{ backend: Backend; info: BackendInfo }>; profile: Profile; note?: string }> {
  let machineCpu: CpuIdentity | undefined;
  if (o.machineCpu !== undefined) {
    try {
      machineCpu = parseMachineCpu(o.machineCpu, o.machineName);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  let profile = o.profile !== undefined ? profileOption(o.profile) : DEFAULT_PROFILE;
  const stamp = (list: Array<{ backend: Backend; info: BackendInfo }>) => {
    for (const { info } of list) {
      const cpu = backendCpu(info, { host, profile, ...(machineCpu ? { machineCpu } : {}) });
      if (cpu) info.cpu = cpu;
    }
    return list;
  };
  let backends = stamp(await probeAll(o.backend, profile, consoleOptions(o), false, kvmOptions(o), o.consoleLog));
  let note: string | undefined;
  if (o.profile === undefined) {
    const hw = backends.find((b) => HARDWARE_BACKENDS.includes(b.info.name) && b.info.available && b.info.cpu)?.info;
    const wanted = hw?.cpu?.profile !== undefined ? findProfile(hw.cpu.profile) : undefined;
    if (hw?.cpu && wanted) {
      note = `model profile ${wanted.name}: the family table's profile for ${hw.name}'s CPU (${hw.cpu.familyName}, family ${hw.cpu.family.toString(16)}h model ${hw.cpu.model.toString(16)}h)`;
      if (wanted !== profile) {
        profile = wanted;
        backends = stamp(await probeAll(o.backend, profile, consoleOptions(o), false, kvmOptions(o), o.consoleLog));
      }
    }
  }
  return { backends, profile, ...(note ? { note } : {}) };
}

/** `svmconf tcghost`: download and build the kvm-tcg backend's guest; --check: boot it and probe. */
async function cmdTcgHost(o: { check?: boolean }): Promise<number> {
  const log = (m: string): void => void process.stdout.write(`${m}\n`);
  await downloadPackages(undefined, log);
  const image = await readyImage(undefined, log);
  log(`tcghost: ${image.manifest.kernelPackage}, ${image.manifest.busyboxPackage}; modules: ${image.manifest.modules.map((m) => m.file + (m.params ? ` ${m.params}` : '')).join(', ')}`);
  if (!o.check) return EXIT.AGREE;
  const info = await kvmTcgBackend().probe();
  log(`${info.name}: ${info.available ? `available — ${info.version}` : `unavailable — ${info.reason}`}`);
  if (info.cpu) log(`CPU: ${info.cpu.modelName ?? '?'} (family ${info.cpu.family.toString(16)}h model ${info.cpu.model.toString(16)}h; ${info.cpu.source})`);
  for (const [f, t] of Object.entries(info.features)) log(`  ${f}: ${t.present ? 'present' : `absent${t.reason ? ` (${t.reason})` : ''}`}`);
  return info.available ? EXIT.AGREE : EXIT.ERROR;
}

async function cmdRun(o: RunOptions): Promise<number> {
  const cases = await selectCases(o);
  const deviations = await registry(o.deviations);
  const host = await probeHostInfo();
  const { backends, note: profileNote } = await probeWithCpus(o, host);
  const progress = createProgress(cases.length * backends.length);
  if (profileNote) progress.note(profileNote);
  for (const { info } of backends) progress.note(`backend ${info.name}: ${info.available ? 'available' : 'unavailable'}${info.reason ? ` — ${info.reason}` : ''}`);
  const kernels = await buildKernels(cases, { extraDirs: o.templates });
  progress.note(`built ${kernels.length} kernel(s) for ${cases.length} case(s)`);
  // A configured console runs the whole suite image in one boot (runner/backends/console.ts).
  const consoles = backends.filter((b) => b.info.name === CONSOLE_BACKEND && b.info.available);
  const torture = { boots: 0, restores: 0 };
  const byCase = await runKernels(kernels, backends.filter((b) => !consoles.includes(b)), {
    jobs: o.jobs,
    idleTimeoutMs: o.timeout * 1000,
    onProgress: (ev) => {
      if (ev.type === 'case') progress.caseDone(ev.status, ev.backend);
      else {
        // the native runner's torture counts, summed over its boots (each boot's count is in its detail)
        const restores = /torture: (\d+) restores/.exec(ev.detail);
        const forced = /torture control: (\d+) forced exits/.exec(ev.detail);
        if (restores || forced) {
          torture.boots++;
          torture.restores += Number((restores ?? forced)![1]);
        }
      }
    },
  });
  if (torture.boots > 0) {
    progress.note(o.tortureControl
      ? `--torture --torture-control: ${torture.restores} forced exits over ${torture.boots} boots, no save/restore`
      : `--torture: ${torture.restores} save/restore cycles over ${torture.boots} boots`);
  }
  for (const { backend, info } of consoles) {
    const run = await (backend as ConsoleBackend).runSuite(kernels, {
      idleTimeoutMs: o.timeout * 1000,
      onCase: (_id, status) => progress.caseDone(status, info.name),
    });
    progress.note(`${info.name}: ${run.end} (${run.detail}) after ${run.seconds.toFixed(1)} s`);
    for (const [id, r] of run.results) {
      const row = byCase.get(id) ?? {};
      row[info.name] = r;
      byCase.set(id, row);
    }
  }
  progress.end();
  const runs = cases.map((c) => {
    const results: Record<string, CaseResult> = { ...(byCase.get(c.id) ?? {}) };
    // a case that produced no result is an error, never a pass
    for (const { info } of backends) results[info.name] ??= { status: 'ERROR', reason: 'no result from the runner' };
    return { case: c, results };
  });
  const results = buildResults({ host, backends: backends.map((b) => b.info), runs });
  const comparison = compareResults(results, { deviations });
  results.deviations = deviationsByCase(comparison);
  const warmCold = compareWarmCold(results);
  if (warmCold.pairs > 0) results.warmCold = warmCold;
  await mkdir(o.out, { recursive: true });
  await writeResults(join(o.out, 'results.json'), results);
  // the model against the hardware recorded for this run's family (expected/hw/<family>/), when there is any
  const family = runCpu(results.backends, results.host);
  const recs = await readHwFamily(family.familySlug);
  const recordedSection = recs.length
    ? renderRecordedSection(buildMatrix([{ source: 'this run', results }], { deviations, recorded: new Map([[family.familySlug, recs]]) }).families[0]!)
    : [];
  await writeFileAtomic(join(o.out, 'matrix.md'), renderMarkdown(results, { deviations, comparison }) + (recordedSection.length ? `\n${recordedSection.join('\n')}` : ''));
  if (o.json) process.stdout.write(serializeResults(results));
  else {
    printTable(results, process.stdout, { deviations, comparison });
    process.stdout.write(`\nCPU family of this run: ${family.familyName} (${family.source})${recs.length ? '' : `; no recorded hardware under expected/hw/${family.familySlug}/`}\n`);
    if (recordedSection.length) process.stdout.write(`\n${recordedSection.join('\n')}`);
    process.stdout.write(`\nwrote ${join(o.out, 'results.json')} and ${join(o.out, 'matrix.md')}\n`);
  }
  return exitCodeFor(results, deviations);
}

async function cmdIso(o: CaseSelection & { out: string; menuTimeout: number }): Promise<number> {
  if (!Number.isInteger(o.menuTimeout) || o.menuTimeout < 0) throw new UsageError('--menu-timeout: expected a whole number of seconds');
  const cases = await selectCases(o);
  const kernels = await buildKernels(cases, { extraDirs: o.templates });
  const iso = await buildIso(kernels, { renderer: await makeRenderer(o.templates), cacheDir: defaultCacheDir(ROOT), out: o.out, timeout: o.menuTimeout });
  process.stdout.write(`${relative(process.cwd(), iso) || iso}: ${kernels.length} kernel(s), ${cases.length} case(s), BIOS and UEFI\n`);
  return EXIT.AGREE;
}

async function cmdCompare(files: string[], o: { out?: string; json?: boolean; deviations?: string }): Promise<number> {
  if (files.length !== 1) throw new UsageError('compare takes one results.json (merging several runs comes with `publish`)');
  const results = await readResults(files[0]!);
  // the registry as it is now (not as it was when the results were written)
  const deviations = await registry(o.deviations);
  const comparison = compareResults(results, { deviations });
  // the warm/cold twins compared again too (a results.json from before the comparison has none)
  const warmCold = compareWarmCold(results);
  if (warmCold.pairs > 0) results.warmCold = warmCold;
  if (o.out) await mkdir(o.out, { recursive: true });
  if (o.out) await writeMarkdown(join(o.out, 'matrix.md'), results, { deviations, comparison });
  if (o.json) process.stdout.write(`${JSON.stringify({ ...comparison.summary, deviations: deviationsByCase(comparison) }, null, 2)}\n`);
  else printTable(results, process.stdout, { deviations, comparison });
  return exitCodeFor(results, deviations);
}

async function cmdBackends(o: { json?: boolean; consoleCmd?: string; bootCmd?: string }): Promise<number> {
  const infos = (await probeAll([], DEFAULT_PROFILE, consoleOptions(o), true)).map((b) => b.info);
  if (o.json) process.stdout.write(`${JSON.stringify(infos, null, 2)}\n`);
  else {
    for (const b of infos) {
      process.stdout.write(`${b.name}: ${b.available ? 'available' : 'unavailable'}${b.reason ? ` — ${b.reason}` : ''}\n`);
      for (const [f, s] of Object.entries(b.features)) {
        process.stdout.write(`  ${f}: can show ${s.present ? 'yes' : 'no'}, can hide ${s.absent ? 'yes' : 'no'}${s.reason ? ` — ${s.reason}` : ''}\n`);
      }
    }
    // not probed here: kvm-tcg would boot a guest to answer
    process.stdout.write('run only when named in --backend: model-l0 (the model under the virtual L0), kvm-tcg (the native runner on KVM inside QEMU TCG; `svmconf tcghost --check` builds and boots it and says what KVM offers there)\n');
  }
  return EXIT.AGREE;
}

const hex32 = (v: number) => `0x${(v >>> 0).toString(16)}`;

async function cmdProfiles(o: { json?: boolean }): Promise<number> {
  const rows = PROFILES.map((p) => {
    const svm = hardwareCpuid(p, 0x8000_000a, 0);
    return {
      name: p.name, default: p === DEFAULT_PROFILE, title: p.title ?? '', vendor: p.vendor,
      family: hex32(p.family), model: hex32(p.model), stepping: p.stepping, basis: p.basis ?? 'assembled',
      svm: { revision: svm.eax & 0xff, asids: svm.ebx, edx: hex32(svm.edx), features: svmFeatureNames(p) },
      switches: hardwareSvmSwitches(p),
      sources: p.sources, notes: p.notes ?? [],
    };
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT.AGREE;
  }
  for (const r of rows) {
    process.stdout.write(`${r.name}${r.default ? ' (default)' : ''}  family ${r.family} model ${r.model} stepping ${r.stepping}  [${r.basis}]\n  ${r.title}\n`);
    process.stdout.write(`  SVM rev ${r.svm.revision}, ${r.svm.asids} ASIDs, 8000_000A EDX ${r.svm.edx}: ${r.svm.features.join(' ')}\n`);
    for (const s of r.sources) process.stdout.write(`  source: ${s}\n`);
    for (const n of r.notes) process.stdout.write(`  note: ${n}\n`);
  }
  return EXIT.AGREE;
}

async function cmdExpected(o: { profile: string[]; check?: boolean }): Promise<number> {
  const profiles = o.profile.length ? o.profile.map(profileOption) : [...PROFILES];
  // every built-in case, whatever the profile: a case a profile cannot run is recorded UNSUPPORTED
  const cases = expandAll(await loadTemplates());
  const kernels = await buildKernels(cases);
  const layouts = new Map(cases.map((c) => [c.template.id, c.template.record] as const));
  let drifted = 0;
  for (const profile of profiles) {
    const files = await runGolden(kernels, profile);
    const dir = join(EXPECTED_DIR, profile.name);
    if (o.check) {
      const shown = relative(process.cwd(), dir) || dir;
      const drift = [...diffGolden(profile.name, await readGoldenDir(dir), files, layouts, shown), ...checkProvenance(profile, await readProvenance(dir), shown)];
      drifted += drift.length;
      if (drift.length) process.stdout.write(`${formatDrift(drift)}\n`);
      else process.stdout.write(`${profile.name}: the model's records equal ${shown}\n`);
      continue;
    }
    const w = await writeGolden(profile, files, { command: `svmconf expected${o.profile.length ? ` --profile ${o.profile.join(',')}` : ''}` });
    const counts = new Map<string, number>();
    for (const f of files.values()) for (const e of f.cases) counts.set(e.status, (counts.get(e.status) ?? 0) + 1);
    const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
    process.stdout.write(`${profile.name}: ${summary}; ${w.changed.length ? `${w.changed.length} file(s) changed` : 'no record changed'}${w.provenanceWritten ? ', PROVENANCE.json written' : ''}\n`);
  }
  if (o.check && drifted > 0) return EXIT.DIVERGE;
  if (!o.check) process.stdout.write('review the change with `git diff expected/` before committing it\n');
  return EXIT.AGREE;
}

/** A path relative to the working directory when it is below it, else absolute. */
function shownPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : resolve(p);
}

/** readResults with a missing or unreadable file said plainly (the path and why). */
async function readResultsFile(file: string): Promise<Results> {
  try {
    return await readResults(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ResultsFormatError(`${file}: no such file`);
    if (code === 'EISDIR') throw new ResultsFormatError(`${file}: a directory, not a results.json`);
    if (code === 'EACCES') throw new ResultsFormatError(`${file}: not readable (permission denied)`);
    throw e;
  }
}

/** `svmconf publish`: one matrix per CPU family from several results files (report/publish.ts). */
async function cmdPublish(files: string[], o: { out: string; deviations?: string; hw?: string; json?: boolean }): Promise<number> {
  const inputs: PublishInput[] = [];
  for (const f of files) {
    inputs.push({ source: shownPath(f), results: await readResultsFile(f) });
  }
  const deviations = await registry(o.deviations);
  const prelim = buildMatrix(inputs, { deviations });
  const recorded = new Map<string, HwRecording[]>();
  for (const fam of prelim.families) {
    const recs = await readHwFamily(fam.slug, o.hw ? resolve(o.hw) : HW_DIR);
    if (recs.length) recorded.set(fam.slug, recs);
  }
  const matrix = recorded.size ? buildMatrix(inputs, { deviations, recorded }) : prelim;
  const paths = await writePublished(o.out, matrix, deviations);
  if (o.json) process.stdout.write(`${JSON.stringify(matrix, null, 2)}\n`);
  else {
    for (const f of matrix.families) {
      const v = f.summary.verdicts;
      process.stdout.write(`${f.name} (family ${f.family.toString(16).toUpperCase().padStart(2, '0')}h, ${f.slug}${f.profile ? `, profile ${f.profile}` : ''}): ${f.runs.length} run(s), ${f.columns.length} column(s)${f.recorded.length ? ` incl. ${f.recorded.length} recorded` : ''}, ${f.summary.cases} cases: diverge ${v.diverge}, known ${v.known}, agree ${v.agree}, single ${v.single}, none ${v.none}; problems ${f.summary.problems}; unstable ${f.summary.unstable}\n`);
    }
    process.stdout.write(`wrote ${Object.values(paths).map(shownPath).join(', ')}\n`);
  }
  return publishExitCode(matrix);
}

/** `svmconf record`: a run's hardware records into expected/hw/<family>/<cpu>/ (report/hwrecords.ts). */
async function cmdRecord(file: string, o: { backend?: string; force?: boolean; hw?: string }): Promise<number> {
  const results = await readResultsFile(file);
  const command = ['svmconf', ...process.argv.slice(2)].join(' ');
  const r = await recordHardware(results, { source: file, ...(o.backend ? { backend: o.backend } : {}), force: o.force === true, command, ...(o.hw ? { dir: resolve(o.hw) } : {}) });
  process.stdout.write(`${shownPath(r.dir)}: ${r.cases} case(s) of ${r.backend} on ${r.cpu.modelName ?? 'the CPU'} (${r.cpu.familyName}), ${r.files.length} file(s) and PROVENANCE.json${r.forced ? ' — FORCED: not a hardware backend, the provenance says so' : ''}\n`);
  process.stdout.write('review with `git diff expected/hw/` and commit it to contribute the records\n');
  return EXIT.AGREE;
}

/** `svmconf families`: the family table of model/profiles/families.ts, or one CPU classified. */
async function cmdFamilies(o: { cpu?: string; json?: boolean }): Promise<number> {
  if (o.cpu !== undefined) {
    let cpu: CpuIdentity;
    try {
      cpu = parseMachineCpu(o.cpu);
    } catch (e) {
      throw new UsageError((e as Error).message.replace('--machine-cpu', '--cpu'));
    }
    const f = classifyCpu(cpu);
    if (o.json) process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
    else process.stdout.write(`${familyLabel(f)}: ${f.slug}, profile ${f.profile ?? '(none)'}${f.profileNote ? ` (${f.profileNote})` : ''}\n  source: ${f.source}\n`);
    return EXIT.AGREE;
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(FAMILY_TABLE, null, 2)}\n`);
    return EXIT.AGREE;
  }
  const h = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
  for (const r of FAMILY_TABLE) {
    const models = r.models.map(([a, b]) => `${h(a)}h-${h(b)}h`).join(', ');
    process.stdout.write(`${r.vendor} family ${h(r.family)}h models ${models}: ${r.name} -> ${r.profile}${r.profileNote ? ` (${r.profileNote})` : ''}\n  parts: ${r.parts}\n  source: ${r.source}\n`);
  }
  return EXIT.AGREE;
}

/** `svmconf mutants`: the kill table (runner/mutants.ts); exit 1 if a mutant survives or the correct L0 is not transparent. */
async function cmdMutants(o: CaseSelection & { mutant: string[]; profile: string; jobs: number; json?: boolean; firstKill?: boolean }): Promise<number> {
  const profile = profileOption(o.profile);
  const unknown = o.mutant.filter((m) => !isMutantName(m));
  if (unknown.length) throw new UsageError(`unknown mutant ${unknown.join(', ')} (known: ${allMutantNames().join(', ')})`);
  const mutants = o.mutant.length ? (o.mutant as MutantName[]) : allMutantNames();
  const kernels = await buildKernels(await selectCases(o), { extraDirs: o.templates });
  const report = await runMutants(kernels, { profile, mutants, jobs: o.jobs, firstKill: o.firstKill });
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`profile ${report.profile}, ${report.cases} case(s)\n${formatKillTable(report)}`);
  const { survived, opaque } = survivors(report);
  if (!o.json && survived.length) process.stdout.write(`surviving: ${survived.join(', ')}\n`);
  if (!o.json && opaque) process.stdout.write('the correct L0 changed records: see the (none) row (--json for the fields)\n');
  return survived.length || opaque ? EXIT.DIVERGE : EXIT.AGREE;
}

/** The command tree; each action stores its exit code through `setCode`. */
export function program(setCode: (code: number) => void): Command {
  const p = new Command('svmconf')
    .description('Differential conformance suite for x86 event delivery and AMD SVM event injection')
    .exitOverride()
    .showHelpAfterError();
  const selection = (c: Command) =>
    c
      .option('--templates <dir>', 'also load templates from this folder (repeatable; its partials/ too)', collect, [])
      .option('--filter <glob>', 'only cases whose id matches (repeatable, comma-separated; * and ?)', collect, []);

  selection(p.command('list').description('list the cases, with counts per template and parameter value'))
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await cmdList(o)));

  selection(p.command('build').description('render, assemble and link the kernels (cached under build/)'))
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await cmdBuild(o)));

  selection(p.command('run').description('run the cases on the backends and report the matrix'))
    .option('--backend <names>', 'backends to use (repeatable, comma-separated; default: all but model-l0 and kvm-tcg, which run only when named)', collect, [])
    .addOption(new Option('--jobs <n>', 'kernels run at once').argParser(positiveInt).default(availableParallelism()))
    .addOption(new Option('--timeout <seconds>', 'a boot with no output for this long is TIMEOUT').argParser(positiveInt).default(30))
    .option('--out <dir>', 'where results.json and matrix.md go', join(ROOT, 'out'))
    .option('--deviations <file>', 'the deviation registry (default: expected/deviations.yaml)')
    .option('--profile <name>', `CPU profile of the model backend (see \`svmconf profiles\`; default: the family table's profile for the CPU of a kvm/console backend, else ${DEFAULT_PROFILE.name})`)
    .option('--machine-cpu <eax>', "console backend: the machine's CPUID Fn0000_0001 EAX (e.g. 0x00A00F11), for its CPU family in results.json")
    .option('--machine-name <name>', "console backend: the machine's CPU name (e.g. 'AMD EPYC 9654 96-Core Processor'), with --machine-cpu")
    .option('--json', 'print results.json to stdout instead of the table')
    .option('--console-cmd <command>', "console backend: shell command attaching to the serial console of a machine that boots the image of `svmconf iso` (e.g. 'ipmitool -I lanplus -H bmc -U admin -P pw sol activate')")
    .option('--boot-cmd <command>', 'console backend: shell command that boots the machine, run once the console is attached')
    .option('--torture', 'kvm and kvm-tcg backends: save the whole vCPU, destroy the VM, create a new one and restore, at every exit and at timer signals 5 ms apart (also SVMCONF_KVM_TORTURE=1)')
    .addOption(new Option('--torture-every <n>', 'with --torture: at every nth exit only (the timer still fires); for the slow kvm-tcg').argParser(positiveInt))
    .option('--torture-control', 'with --torture: the control run, the same forced exits without the save/restore (tells a record changed by the restore from one changed by the interruption)')
    .option('--console-log <file>', 'console backend: read a saved serial log of one boot of the image instead of a live console')
    .action(async (o) => setCode(await cmdRun({ ...o, out: resolve(o.out) })));

  selection(p.command('parse-log').description("turn a captured serial log of the suite image (e.g. a LAVA job's) into results.json, with the model run beside it"))
    .argument('<log>', 'the console log (raw bytes as captured: escape sequences, CR/LF and noise are cleaned)')
    .option('--machine-cpu <eax>', "the machine's CPUID Fn0000_0001 EAX (e.g. 0x00A10F11): its family in results.json and the model's profile")
    .option('--machine-name <name>', "the machine's CPU name (e.g. 'AMD EPYC 9654 96-Core Processor'), with --machine-cpu")
    .option('--profile <name>', "the model's profile (default: the family table's profile for --machine-cpu, else " + DEFAULT_PROFILE.name + ')')
    .option('--no-model', 'only the log\'s results, no model run')
    .option('--out <dir>', 'where results.json and matrix.md go', join(ROOT, 'out'))
    .option('--deviations <file>', 'the deviation registry (default: expected/deviations.yaml)')
    .option('--json', 'print results.json to stdout instead of the table')
    .action(async (log: string, o) => {
      await readConsoleLog(resolve(log)); // a log that cannot be read fails before the model runs
      setCode(await cmdRun({
      ...o, consoleLog: resolve(log), backend: o.model === false ? [CONSOLE_BACKEND] : ['model', CONSOLE_BACKEND], jobs: 1, timeout: 30, out: resolve(o.out),
      }));
    });

  selection(p.command('iso').description('build the bootable suite image (GRUB, BIOS and UEFI): every kernel in one boot, protocol on COM1'))
    .option('--out <file>', 'the image', join(ROOT, 'out', 'svmconf.iso'))
    .addOption(new Option('--menu-timeout <seconds>', 'seconds the GRUB menu waits before the full suite').argParser(Number).default(5))
    .action(async (o) => setCode(await cmdIso({ ...o, out: resolve(o.out) })));

  p.command('tcghost')
    .description("build the TCG host of the kvm-tcg backend (Debian's kernel and busybox-static via apt-get download, the helper linked statically); --check boots it and prints what KVM offers there")
    .option('--check', 'boot it and probe KVM in it')
    .action(async (o: { check?: boolean }) => setCode(await cmdTcgHost(o)));

  p.command('compare')
    .description('compare the backends of a results.json again (table, exit code)')
    .argument('<results...>', 'results.json file')
    .option('--out <dir>', 'also write matrix.md there')
    .option('--deviations <file>', 'the deviation registry (default: expected/deviations.yaml)')
    .option('--json', 'print the summary as JSON')
    .action(async (files: string[], o) => setCode(await cmdCompare(files, o)));

  selection(p.command('mutants').description('run the cases under each mutant (model/mutants.ts) and print the kill table'))
    .option('--mutant <names>', 'only these mutants (repeatable, comma-separated; default: all)', collect, [])
    .option('--profile <name>', 'CPU profile of the model', DEFAULT_PROFILE.name)
    .option('--first-kill', 'stop each mutant at the first batch of kernels that kills it (faster; counts are first kills)')
    .addOption(new Option('--jobs <n>', 'kernels run at once').argParser(positiveInt).default(availableParallelism()))
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await cmdMutants(o)));

  p.command('publish')
    .description('merge results.json files from several machines and runs into one matrix per CPU family: matrix.md, matrix.html, matrix.json, junit.xml')
    .argument('<results...>', 'results.json files')
    .option('--out <dir>', 'where the matrix files go', join(ROOT, 'out', 'publish'))
    .option('--deviations <file>', 'the deviation registry (default: expected/deviations.yaml)')
    .option('--hw <dir>', 'recorded hardware (default: expected/hw)')
    .option('--json', 'print matrix.json to stdout')
    .action(async (files: string[], o) => setCode(await cmdPublish(files, { ...o, out: resolve(o.out) })));

  p.command('record')
    .description("store a run's hardware records under expected/hw/<family>/<cpu>/ with their provenance, to contribute them")
    .argument('<results>', 'results.json of a run with a hardware backend (kvm, qemu-kvm, console)')
    .option('--backend <name>', 'the backend to record (default: the run\'s only hardware backend)')
    .option('--force', 'record an emulator or the model anyway (PROVENANCE.json then says forced: not hardware truth)')
    .option('--hw <dir>', 'where recordings go (default: expected/hw)')
    .action(async (file: string, o) => setCode(await cmdRecord(file, o)));

  p.command('families')
    .description('the CPU family table: (vendor, family, model range) -> family name and model profile, with sources; --cpu classifies one CPU')
    .option('--cpu <eax>', 'classify CPUID Fn0000_0001 EAX (e.g. 0x00A10F11; VENDOR:0x… for another vendor)')
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await cmdFamilies(o)));

  p.command('profiles')
    .description('the CPU profiles (AMD families) the model can follow, with their SVM CPUID and sources')
    .option('--json', 'machine-readable output')
    .action(async (o) => setCode(await cmdProfiles(o)));

  p.command('expected')
    .description('run every case on the model under every profile and write expected/<profile>/ (the golden records)')
    .option('--profile <names>', 'only these profiles (repeatable, comma-separated)', collect, [])
    .option('--check', 'write nothing: compare with expected/ and print the drift field by field (exit 1 on drift)')
    .action(async (o) => setCode(await cmdExpected(o)));

  p.command('backends')
    .description('what each backend can do on this machine, and why not')
    .option('--json', 'machine-readable output')
    .option('--console-cmd <command>', 'console backend: the command attaching to the serial console')
    .option('--boot-cmd <command>', 'console backend: the command booting the machine')
    .action(async (o) => setCode(await cmdBackends(o)));
  return p;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.AGREE;
  const p = program((c) => (code = c));
  try {
    await p.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof TcgHostImageError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT.ERROR;
    }
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.AGREE : EXIT.USAGE;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT.USAGE;
    }
    if (e instanceof TemplateError || e instanceof ToolMissingError || e instanceof DeviationError || e instanceof ResultsFormatError
      || e instanceof RecordError || e instanceof PublishError || e instanceof ConsoleLogError) {
      process.stderr.write(`svmconf: ${e.message}\n`);
      return EXIT.ERROR;
    }
    process.stderr.write(`svmconf: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.ERROR;
  } finally {
    // the kvm-tcg backend's guest, if a probe started it
    await stopTcgHost();
  }
}

process.exitCode = await main(process.argv);
