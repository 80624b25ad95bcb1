// Golden records: what the reference model gives for every case under every CPU profile, checked
// in under expected/<profile>/ so that every change of the model's behaviour is a reviewed diff.
//
//   expected/<profile>/<template-id>.json   one entry per case, in case order: id, status, record, reason
//   expected/<profile>/PROVENANCE.json      model version (hash of model/ + package version + git
//                                           commit), profile fingerprint, date, command, counts
//
// `svmconf expected` (make expected) writes them; test/golden.spec.ts and `svmconf expected --check`
// run the model again and report any difference field by field. Only the records (and the
// profile fingerprint) are compared: the date and the model hash are provenance, so a faster model
// that gives the same records, or a regeneration on another day, is no drift.
//
// Honesty rule: the model computes and never reads expected/; this module lives in report/ and
// only compares against it. suite/golden.ts runs the model to make the records.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { CaseResult, RecordField, Status } from '../core/types.ts';
import type { Profile } from '../model/profile.ts';
import { decodeRecord, formatValue, hex, RecordFormatError } from './decode.ts';
import { STATUSES } from './compare.ts';
import { writeFileAtomic } from './results.ts';

export const GOLDEN_SCHEMA = 'svmconf-golden/1' as const;
export const PROVENANCE_SCHEMA = 'svmconf-golden-provenance/1' as const;
export const PROVENANCE_FILE = 'PROVENANCE.json';
const ROOT = resolve(import.meta.dirname, '..');
export const EXPECTED_DIR = join(ROOT, 'expected');
export const REGENERATE_HINT = 'Run `make expected` (node bin/svmconf.js expected), review `git diff expected/` field by field, and commit it with the model change that caused it.';

export interface GoldenEntry {
  id: string;
  status: Status;
  /** Lower-case hex of the record (OK, or a CRASH the kernel reported). */
  record?: string;
  /** The model's defined-bits mask of the record (CaseResult.mask), when some bits are undefined. */
  mask?: string;
  /** Why the manual leaves the outcome open (CaseResult.open), when it does. */
  open?: string;
  reason?: string;
}

export interface GoldenFile {
  schema: typeof GOLDEN_SCHEMA;
  profile: string;
  template: string;
  cases: GoldenEntry[];
}

export interface Provenance {
  schema: typeof PROVENANCE_SCHEMA;
  profile: string;
  profileTitle: string;
  /** sha256 of the profile's identity and CPUID table (profileFingerprint). */
  profileFingerprint: string;
  model: ModelVersion;
  generated: string;
  command: string;
  cases: number;
  statuses: Partial<Record<Status, number>>;
}

export interface ModelVersion {
  /** sha256 over the paths and contents of model/**.ts, sorted by path. */
  sourcesSha256: string;
  packageVersion: string;
  /** HEAD when the records were generated ("unknown" outside git), and whether model/ differed from it. */
  gitCommit: string;
  modelDirty: boolean;
}

// ---------------------------------------------------------------------------------------------
// Stable serialisation

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** JSON with sorted keys, two-space indent, one trailing newline: the same input gives the same bytes. */
export function stableJson(v: unknown): string {
  return `${JSON.stringify(sortKeys(v), null, 2)}\n`;
}

export function profileFingerprint(p: Profile): string {
  const identity = { name: p.name, vendor: p.vendor, family: p.family, model: p.model, stepping: p.stepping, cpuid: p.cpuid };
  return createHash('sha256').update(stableJson(identity)).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Entries

/** One entry from a scheduler result (no timings: they are not part of the record). */
export function goldenEntry(id: string, r: CaseResult | undefined): GoldenEntry {
  if (!r) return { id, status: 'ERROR', reason: 'no result from the runner' };
  const e: GoldenEntry = { id, status: r.status };
  if (r.record !== undefined && r.record !== '') e.record = r.record.toLowerCase();
  if (r.mask !== undefined && r.mask !== '') e.mask = r.mask.toLowerCase();
  if (r.open !== undefined && r.open !== '') e.open = r.open;
  if (r.reason !== undefined && r.reason !== '') e.reason = r.reason;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Reading

export class GoldenFormatError extends Error {
  override name = 'GoldenFormatError';
}

function validateGolden(v: unknown, source: string): GoldenFile {
  const fail = (why: string): never => {
    throw new GoldenFormatError(`${source}: ${why}`);
  };
  if (v === null || typeof v !== 'object') fail('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.schema !== GOLDEN_SCHEMA) fail(`schema is ${JSON.stringify(o.schema)}, expected ${GOLDEN_SCHEMA}`);
  if (typeof o.profile !== 'string' || typeof o.template !== 'string') fail('profile and template must be strings');
  if (!Array.isArray(o.cases)) fail('cases must be an array');
  for (const [i, e] of (o.cases as unknown[]).entries()) {
    const c = e as Record<string, unknown>;
    if (c === null || typeof c !== 'object' || typeof c.id !== 'string') fail(`cases[${i}]: id missing`);
    if (!STATUSES.includes(c.status as Status)) fail(`cases[${i}] (${String(c.id)}): status ${JSON.stringify(c.status)} unknown`);
    if (c.record !== undefined && (typeof c.record !== 'string' || !/^[0-9a-f]*$/.test(c.record))) fail(`cases[${i}] (${String(c.id)}): record must be lower-case hex`);
    if (c.mask !== undefined && (typeof c.mask !== 'string' || !/^[0-9a-f]*$/.test(c.mask) || c.mask.length !== String(c.record ?? '').length)) fail(`cases[${i}] (${String(c.id)}): mask must be lower-case hex of the record's length`);
    if (c.reason !== undefined && typeof c.reason !== 'string') fail(`cases[${i}] (${String(c.id)}): reason must be a string`);
  }
  return o as unknown as GoldenFile;
}

/** The golden files of one profile directory (template id → file); empty when the directory does not exist. */
export async function readGoldenDir(dir: string): Promise<Map<string, GoldenFile>> {
  const out = new Map<string, GoldenFile>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    if (!name.endsWith('.json') || name === PROVENANCE_FILE) continue;
    const path = join(dir, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      throw new GoldenFormatError(`${path}: ${(e as Error).message}`);
    }
    const f = validateGolden(parsed, path);
    if (`${f.template}.json` !== name) throw new GoldenFormatError(`${path}: holds template ${f.template}, expected ${name.slice(0, -5)}`);
    out.set(f.template, f);
  }
  return out;
}

export async function readProvenance(dir: string): Promise<Provenance | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, PROVENANCE_FILE), 'utf8')) as Provenance;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Comparing

export interface Drift {
  profile: string;
  /** The golden file (relative to the repository), or the directory for provenance problems. */
  file: string;
  /** The case, or undefined for a whole-file problem. */
  caseId?: string;
  /** What differs, one line each, golden first, then the model. */
  lines: string[];
}

function fieldLines(golden: string, model: string, layout: readonly RecordField[] | undefined): string[] {
  if (!layout || layout.length === 0) return [`record: golden ${golden}, model ${model}`];
  let g, m;
  try {
    g = decodeRecord(golden, layout);
    m = decodeRecord(model, layout);
  } catch (e) {
    if (e instanceof RecordFormatError) return [`record: golden ${golden}, model ${model}`];
    throw e;
  }
  const lines: string[] = [];
  if (g.bytes.length !== m.bytes.length) lines.push(`(size): golden ${g.bytes.length} bytes, model ${m.bytes.length} bytes (layout declares ${g.expectedSize})`);
  for (const [i, gf] of g.fields.entries()) {
    const mf = m.fields[i];
    if (gf.value === mf?.value) continue;
    const text = (v: bigint | undefined) => (v === undefined ? '(missing)' : `${formatValue(v, gf.field)} [${hex(v)}]`);
    lines.push(`${gf.field.name}: golden ${text(gf.value)}, model ${text(mf?.value)}`);
  }
  if (lines.length === 0) lines.push(`record: golden ${golden}, model ${model}`); // bytes beyond the layout
  return lines;
}

function entryLines(g: GoldenEntry, m: GoldenEntry, layout: readonly RecordField[] | undefined): string[] {
  const lines: string[] = [];
  if (g.status !== m.status) lines.push(`status: golden ${g.status}, model ${m.status}`);
  if ((g.record ?? '') !== (m.record ?? '')) {
    if (g.record && m.record && g.status === m.status && g.status === 'OK') lines.push(...fieldLines(g.record, m.record, layout));
    else lines.push(`record: golden ${g.record ?? '(none)'}, model ${m.record ?? '(none)'}`);
  }
  if ((g.open ?? '') !== (m.open ?? '')) lines.push(`open: golden ${g.open ?? '(defined)'}, model ${m.open ?? '(defined)'}`);
  if ((g.mask ?? '') !== (m.mask ?? '')) lines.push(`mask: golden ${g.mask ?? '(all bits defined)'}, model ${m.mask ?? '(all bits defined)'}`);
  if ((g.reason ?? '') !== (m.reason ?? '')) lines.push(`reason: golden ${JSON.stringify(g.reason ?? '')}, model ${JSON.stringify(m.reason ?? '')}`);
  return lines;
}

/**
 * Every difference between the checked-in files of one profile and what the model gives now:
 * changed, new and vanished cases and templates. `layouts` (template id → record layout) lets
 * records be shown field by field with decoded values.
 */
export function diffGolden(
  profile: string,
  golden: ReadonlyMap<string, GoldenFile>,
  model: ReadonlyMap<string, GoldenFile>,
  layouts: ReadonlyMap<string, readonly RecordField[]>,
  dir = join('expected', profile),
): Drift[] {
  const drift: Drift[] = [];
  const templates = [...new Set([...golden.keys(), ...model.keys()])].sort();
  for (const t of templates) {
    const file = join(dir, `${t}.json`);
    const g = golden.get(t);
    const m = model.get(t);
    if (!g) {
      drift.push({ profile, file, lines: [`no golden file: template ${t} is new (${m?.cases.length ?? 0} case(s))`] });
      continue;
    }
    if (!m) {
      drift.push({ profile, file, lines: [`stale golden file: the model ran no case of template ${t}`] });
      continue;
    }
    if (g.profile !== profile) drift.push({ profile, file, lines: [`file says profile ${g.profile}`] });
    const gById = new Map(g.cases.map((e) => [e.id, e] as const));
    const mById = new Map(m.cases.map((e) => [e.id, e] as const));
    for (const e of m.cases) {
      const ge = gById.get(e.id);
      if (!ge) {
        drift.push({ profile, file, caseId: e.id, lines: [`new case (model: ${e.status})`] });
        continue;
      }
      const lines = entryLines(ge, e, layouts.get(t));
      if (lines.length) drift.push({ profile, file, caseId: e.id, lines });
    }
    for (const e of g.cases) if (!mById.has(e.id)) drift.push({ profile, file, caseId: e.id, lines: ['case no longer exists'] });
    const order = (cs: GoldenEntry[]) => cs.map((c) => c.id).filter((id) => gById.has(id) && mById.has(id)).join('\n');
    if (order(g.cases) !== order(m.cases)) drift.push({ profile, file, lines: ['cases are in a different order'] });
  }
  return drift;
}

/** Provenance problems that are drift: missing, another profile, or a profile whose CPUID changed since. Dates never are. */
export function checkProvenance(profile: Profile, prov: Provenance | undefined, dir = join('expected', profile.name)): Drift[] {
  const file = join(dir, PROVENANCE_FILE);
  if (!prov) return [{ profile: profile.name, file, lines: ['missing'] }];
  const lines: string[] = [];
  if (prov.schema !== PROVENANCE_SCHEMA) lines.push(`schema ${JSON.stringify(prov.schema)}, expected ${PROVENANCE_SCHEMA}`);
  if (prov.profile !== profile.name) lines.push(`names profile ${prov.profile}`);
  if (prov.profileFingerprint !== profileFingerprint(profile)) lines.push(`the profile's CPUID changed since the records were generated (fingerprint ${String(prov.profileFingerprint).slice(0, 12)}…, now ${profileFingerprint(profile).slice(0, 12)}…)`);
  return lines.length ? [{ profile: profile.name, file, lines }] : [];
}

/** The drift as people read it: one block per case, the fields that differ, then what to do. */
export function formatDrift(drift: readonly Drift[], limit = 50): string {
  if (drift.length === 0) return 'golden records: no drift';
  const out: string[] = [`golden records drifted: ${drift.length} difference(s) between the model and expected/`];
  for (const d of drift.slice(0, limit)) {
    out.push(`  ${d.profile}  ${d.caseId ?? '(file)'}  [${d.file}]`);
    for (const l of d.lines) out.push(`      ${l}`);
  }
  if (drift.length > limit) out.push(`  … and ${drift.length - limit} more`);
  out.push(REGENERATE_HINT);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Writing

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function listTs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listTs(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

export async function modelVersion(): Promise<ModelVersion> {
  const files = (await listTs(join(ROOT, 'model'))).map((f) => relative(ROOT, f)).sort();
  const h = createHash('sha256');
  for (const f of files) h.update(`${f}\0`).update(await readFile(join(ROOT, f))).update('\0');
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version?: string };
  return {
    sourcesSha256: h.digest('hex'),
    packageVersion: pkg.version ?? 'unknown',
    gitCommit: git(['rev-parse', 'HEAD']) ?? 'unknown',
    modelDirty: (git(['status', '--porcelain', '--', 'model']) ?? '') !== '',
  };
}

export interface WriteReport {
  profile: string;
  dir: string;
  /** Files whose content changed (or were created / removed). */
  changed: string[];
  /** Whether PROVENANCE.json was rewritten: only when a record file or the profile changed, or it was missing. */
  provenanceWritten: boolean;
}

/**
 * Write one profile's golden files. Unchanged files are left alone, and PROVENANCE.json keeps its
 * date unless something it vouches for changed, so regenerating without a behaviour change gives
 * an empty `git diff`. Golden files of templates that no longer exist are removed.
 */
export async function writeGolden(
  profile: Profile,
  files: ReadonlyMap<string, GoldenFile>,
  opts: { root?: string; command?: string; now?: Date } = {},
): Promise<WriteReport> {
  const dir = join(opts.root ?? EXPECTED_DIR, profile.name);
  await mkdir(dir, { recursive: true });
  const changed: string[] = [];
  for (const [t, f] of files) {
    const path = join(dir, `${t}.json`);
    const text = stableJson(f);
    const old = await readFile(path, 'utf8').catch(() => undefined);
    if (old !== text) {
      await writeFileAtomic(path, text);
      changed.push(path);
    }
  }
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.json') || name === PROVENANCE_FILE || files.has(name.slice(0, -5))) continue;
    await unlink(join(dir, name));
    changed.push(join(dir, name));
  }
  const old = await readProvenance(dir);
  const stale = checkProvenance(profile, old).length > 0;
  let provenanceWritten = false;
  if (changed.length > 0 || stale) {
    const statuses: Partial<Record<Status, number>> = {};
    let cases = 0;
    for (const f of files.values()) {
      for (const e of f.cases) {
        statuses[e.status] = (statuses[e.status] ?? 0) + 1;
        cases++;
      }
    }
    const prov: Provenance = {
      schema: PROVENANCE_SCHEMA,
      profile: profile.name,
      profileTitle: profile.title ?? profile.name,
      profileFingerprint: profileFingerprint(profile),
      model: await modelVersion(),
      generated: (opts.now ?? new Date()).toISOString(),
      command: opts.command ?? 'make expected',
      cases,
      statuses,
    };
    await writeFileAtomic(join(dir, PROVENANCE_FILE), stableJson(prov));
    provenanceWritten = true;
  }
  return { profile: profile.name, dir, changed, provenanceWritten };
}
