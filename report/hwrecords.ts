// Hardware truth: records of a real CPU, checked in under expected/hw/<family-slug>/<cpu-slug>/ so
// that users can contribute what their machines do and the matrix can show the model against it.
//
//   expected/hw/<family>/<cpu>/<template-id>.json   schema svmconf-hw/1: the template's record
//                                                   layout and one entry per case (id, status, record, reason)
//   expected/hw/<family>/<cpu>/PROVENANCE.json      schema svmconf-hw-provenance/1: CPU (vendor,
//                                                   family, model, stepping, name), microcode,
//                                                   kernel, backend and its version, date, command,
//                                                   svmconf commit, whether forced
//
// `svmconf record` writes them (only from a hardware backend, BackendInfo.kind, unless --force,
// which the provenance then says); report/publish.ts reads them. Writes are atomic (writeFileAtomic).

import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BackendInfo, CpuIdentity, RecordField, Results, Status } from '../core/types.ts';
import { slugify } from '../model/profiles/families.ts';
import { HOST_CPU_SOURCE } from '../model/profiles/identity.ts';
import { STATUSES } from './compare.ts';
import { goldenEntry, stableJson, type GoldenEntry } from './golden.ts';
import { writeFileAtomic } from './results.ts';

export const HW_SCHEMA = 'svmconf-hw/1' as const;
export const HW_PROVENANCE_SCHEMA = 'svmconf-hw-provenance/1' as const;
export const HW_PROVENANCE_FILE = 'PROVENANCE.json';
const ROOT = resolve(import.meta.dirname, '..');
export const HW_DIR = join(ROOT, 'expected', 'hw');

export interface HwFile {
  schema: typeof HW_SCHEMA;
  family: string;
  cpu: string;
  template: string;
  layout: RecordField[];
  cases: GoldenEntry[];
}

export interface HwProvenance {
  schema: typeof HW_PROVENANCE_SCHEMA;
  family: { slug: string; name: string; profile?: string };
  cpu: { vendor: string; family: number; model: number; stepping: number; name: string; microcode: string; source: string };
  kernel: string;
  backend: { name: string; version: string };
  /** The date the records were made (the run's results.json `generated`), and when they were filed. */
  generated: string;
  recorded: string;
  command: string;
  svmconfCommit: string;
  /** True when a backend that is not hardware was recorded with --force: not hardware truth. */
  forced: boolean;
  cases: number;
  statuses: Partial<Record<Status, number>>;
}

export class RecordError extends Error {
  override name = 'RecordError';
}

/** The CPU's directory name: `amd-epyc-9654-96-core-processor-19h-11h-s1` (name, family, model, stepping). */
export function cpuSlug(cpu: Pick<CpuIdentity, 'modelName' | 'family' | 'model' | 'stepping'>): string {
  const name = slugify(cpu.modelName ?? '') || 'cpu';
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `${name}-${h(cpu.family)}h-${h(cpu.model)}h-s${cpu.stepping}`;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export interface RecordOptions {
  /** results.json path, for messages. */
  source: string;
  /** The backend to record; default the only hardware backend of the run. */
  backend?: string;
  force?: boolean;
  command: string;
  /** Default expected/hw. */
  dir?: string;
  now?: Date;
}

export interface RecordOutcome {
  dir: string;
  backend: string;
  cpu: CpuIdentity;
  files: string[];
  cases: number;
  forced: boolean;
}

/** Pick the backend to record and check that it may be: a hardware backend, or --force. */
export function chooseRecordBackend(results: Results, o: Pick<RecordOptions, 'backend' | 'force' | 'source'>): BackendInfo {
  const names = results.backends.map((b) => b.name);
  let info: BackendInfo | undefined;
  if (o.backend !== undefined) {
    info = results.backends.find((b) => b.name === o.backend);
    if (!info) throw new RecordError(`${o.source}: no backend ${o.backend} in this run (it has ${names.join(', ')})`);
  } else {
    const hw = results.backends.filter((b) => b.kind === 'hardware' && b.available);
    if (hw.length !== 1) {
      throw new RecordError(`${o.source}: ${hw.length === 0 ? 'no hardware backend (kvm, qemu-kvm, console) ran' : `several hardware backends ran (${hw.map((b) => b.name).join(', ')})`}; name one with --backend`);
    }
    info = hw[0]!;
  }
  if (info.kind !== 'hardware' && !o.force) {
    throw new RecordError(`${o.source}: ${info.name} is ${info.kind === 'model' ? 'the model' : 'an emulator'}, not hardware: only kvm, qemu-kvm, console records are hardware truth (--force records it anyway, marked forced in PROVENANCE.json)`);
  }
  if (!info.available) throw new RecordError(`${o.source}: backend ${info.name} was unavailable in this run (${info.reason}): nothing to record`);
  if (!info.cpu) {
    throw new RecordError(`${o.source}: backend ${info.name} has no CPU in results.json (a results file from before family detection, or a console run without --machine-cpu): run again${info.name === 'console' ? ' with --machine-cpu <CPUID 1 EAX>' : ''}`);
  }
  return info;
}

/** Write expected/hw/<family>/<cpu>/ from one run's backend. */
export async function recordHardware(results: Results, o: RecordOptions): Promise<RecordOutcome> {
  const info = chooseRecordBackend(results, o);
  const cpu = info.cpu!;
  const dir = join(o.dir ?? HW_DIR, cpu.familySlug, cpuSlug(cpu));
  await mkdir(dir, { recursive: true });
  const byTemplate = new Map<string, GoldenEntry[]>();
  const statuses: Partial<Record<Status, number>> = {};
  let cases = 0;
  for (const c of results.cases) {
    const r = c.results[info.name];
    if (!r) continue;
    const e = goldenEntry(c.id, r);
    byTemplate.set(c.template, [...(byTemplate.get(c.template) ?? []), e]);
    statuses[e.status] = (statuses[e.status] ?? 0) + 1;
    cases++;
  }
  if (cases === 0) throw new RecordError(`${o.source}: backend ${info.name} has no result for any case`);
  const files: string[] = [];
  for (const [template, entries] of [...byTemplate].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const file: HwFile = { schema: HW_SCHEMA, family: cpu.familySlug, cpu: cpuSlug(cpu), template, layout: results.layouts[template] ?? [], cases: entries };
    const path = join(dir, `${template}.json`);
    await writeFileAtomic(path, stableJson(file));
    files.push(path);
  }
  const prov: HwProvenance = {
    schema: HW_PROVENANCE_SCHEMA,
    family: { slug: cpu.familySlug, name: cpu.familyName, ...(cpu.profile ? { profile: cpu.profile } : {}) },
    cpu: {
      vendor: cpu.vendor, family: cpu.family, model: cpu.model, stepping: cpu.stepping, name: cpu.modelName ?? 'unknown',
      microcode: cpu.microcode ?? 'not readable', source: cpu.source,
    },
    // the kernel of the machine that ran the backend: the host's for kvm (whose CPU is the host's),
    // unknown for hardware elsewhere (bare metal behind a console)
    kernel: info.kind === 'hardware' && cpu.source !== HOST_CPU_SOURCE ? 'not known (bare metal behind a console: the suite image has no OS)' : results.host.kernel,
    backend: { name: info.name, version: info.version ?? 'unknown' },
    generated: results.generated,
    recorded: (o.now ?? new Date()).toISOString(),
    command: o.command,
    svmconfCommit: gitCommit(),
    forced: info.kind !== 'hardware',
    cases,
    statuses,
  };
  await writeFileAtomic(join(dir, HW_PROVENANCE_FILE), stableJson(prov));
  return { dir, backend: info.name, cpu, files, cases, forced: prov.forced };
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface HwRecording {
  family: string;
  cpu: string;
  dir: string;
  provenance: HwProvenance;
  /** Case id → entry; template id → layout. */
  cases: Map<string, GoldenEntry & { template: string }>;
  layouts: Map<string, RecordField[]>;
}

function validateHwFile(v: unknown, source: string): HwFile {
  const fail = (why: string): never => {
    throw new RecordError(`${source}: ${why}`);
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.schema !== HW_SCHEMA) fail(`schema is ${JSON.stringify(o.schema)}, expected ${HW_SCHEMA}`);
  for (const k of ['family', 'cpu', 'template']) if (typeof o[k] !== 'string') fail(`${k} must be a string`);
  if (!Array.isArray(o.layout)) fail('layout must be an array');
  if (!Array.isArray(o.cases)) fail('cases must be an array');
  for (const [i, e] of (o.cases as unknown[]).entries()) {
    const c = e as Record<string, unknown>;
    if (c === null || typeof c !== 'object' || typeof c.id !== 'string') fail(`cases[${i}]: id missing`);
    if (!STATUSES.includes(c.status as Status)) fail(`cases[${i}] (${String(c.id)}): status ${JSON.stringify(c.status)} unknown`);
    if (c.record !== undefined && (typeof c.record !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(c.record))) fail(`cases[${i}] (${String(c.id)}): record must be lower-case hex`);
  }
  return o as unknown as HwFile;
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RecordError(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RecordError(`${path}: not JSON (${(e as Error).message})`);
  }
}

/** Every recording of one family (expected/hw/<family>/*); empty when there is none. */
export async function readHwFamily(family: string, dir: string = HW_DIR): Promise<HwRecording[]> {
  const famDir = join(dir, family);
  let cpus: string[];
  try {
    cpus = (await readdir(famDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return [];
  }
  const out: HwRecording[] = [];
  for (const cpu of cpus) {
    const cdir = join(famDir, cpu);
    const provenance = (await readJson(join(cdir, HW_PROVENANCE_FILE))) as HwProvenance;
    if (provenance?.schema !== HW_PROVENANCE_SCHEMA) throw new RecordError(`${join(cdir, HW_PROVENANCE_FILE)}: schema is ${JSON.stringify(provenance?.schema)}, expected ${HW_PROVENANCE_SCHEMA}`);
    const cases = new Map<string, GoldenEntry & { template: string }>();
    const layouts = new Map<string, RecordField[]>();
    for (const name of (await readdir(cdir)).sort()) {
      if (!name.endsWith('.json') || name === HW_PROVENANCE_FILE) continue;
      const path = join(cdir, name);
      const f = validateHwFile(await readJson(path), path);
      layouts.set(f.template, f.layout);
      for (const e of f.cases) cases.set(e.id, { ...e, template: f.template });
    }
    out.push({ family, cpu, dir: cdir, provenance, cases, layouts });
  }
  return out;
}
