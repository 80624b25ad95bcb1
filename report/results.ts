// out/results.json: building the Results object (core/types.ts, schema "svmconf-results/1"),
// writing it atomically, reading and validating it. writeFileAtomic is shared by every report writer.
// Files written before BackendInfo.kind existed are read with one legacy rule (legacyKind).

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type {
  BackendInfo, BackendKind, Case, CaseOutcome, CaseResult, FieldDecode, FieldType, HostInfo, RecordField, Results, Status,
} from '../core/types.ts';
import { BACKEND_KINDS, FEATURES } from '../core/types.ts';
import { FIELD_SIZES } from './decode.ts';
import { STATUSES } from './compare.ts';

export const RESULTS_SCHEMA = 'svmconf-results/1' as const;

// ---------------------------------------------------------------------------------------------
// Building

export interface CaseRun {
  case: Case;
  /** Backend name → result. Every backend of the run should have one (missing shows as "—"). */
  results: Record<string, CaseResult>;
}

/** The outcome of one case as results.json stores it. */
export function caseOutcome(c: Case, results: Record<string, CaseResult>): CaseOutcome {
  const copy: Record<string, CaseResult> = {};
  for (const [backend, r] of Object.entries(results)) copy[backend] = { ...r };
  return { id: c.id, template: c.template.id, params: { ...c.params }, results: copy };
}

export function buildResults(input: {
  host: HostInfo;
  backends: BackendInfo[];
  runs: readonly CaseRun[];
  generated?: Date;
}): Results {
  const layouts: Record<string, RecordField[]> = {};
  for (const run of input.runs) {
    const t = run.case.template;
    if (!layouts[t.id]) layouts[t.id] = t.record.map((f) => ({ ...f }));
  }
  return {
    schema: RESULTS_SCHEMA,
    generated: (input.generated ?? new Date()).toISOString(),
    host: { ...input.host },
    backends: input.backends.map((b) => ({ ...b })),
    layouts,
    cases: input.runs.map((r) => caseOutcome(r.case, r.results)),
  };
}

// ---------------------------------------------------------------------------------------------
// Atomic writes

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Write `data` to `path` so that readers see either the old or the new content, never a part:
 * write a temporary file in the same directory, fsync it, rename it over `path`, fsync the directory.
 * The temporary file is removed if anything fails.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  let renamed = false;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    renamed = true;
    await syncDir(dirname(path));
  } catch (e) {
    // the error names the file asked for, not the temporary one
    if ((e as NodeJS.ErrnoException).code) (e as NodeJS.ErrnoException).path = path;
    throw e;
  } finally {
    if (!renamed) await unlink(tmp).catch(() => undefined);
  }
}

/** Synchronous twin of writeFileAtomic (for exit handlers). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  let renamed = false;
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    renamed = true;
    try {
      const dfd = openSync(dirname(path), 'r');
      try { fsyncSync(dfd); } finally { closeSync(dfd); }
    } catch { /* directories cannot be fsynced everywhere */ }
  } finally {
    if (!renamed) try { unlinkSync(tmp); } catch { /* already gone */ }
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  } catch { /* directories cannot be fsynced everywhere (e.g. some network filesystems) */ }
}

/** results.json text: 2-space indented JSON with a final newline. */
export function serializeResults(results: Results): string {
  return JSON.stringify(results, null, 2) + '\n';
}

export async function writeResults(path: string, results: Results): Promise<void> {
  validateResults(results, path);
  await writeFileAtomic(path, serializeResults(results));
}

// ---------------------------------------------------------------------------------------------
// Reading and validation

export class ResultsFormatError extends Error {
  override name = 'ResultsFormatError';
}

type Json = unknown;
const isObj = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const DECODES: readonly FieldDecode[] = ['hex', 'vector', 'exitcode', 'eventinfo', 'rflags', 'offset', 'selector', 'count', 'bool'];

/**
 * Check that `v` has the shape of Results (schema svmconf-results/1); throws ResultsFormatError
 * naming the source and the JSON path of the first problem. Returns `v` typed.
 */
export function validateResults(v: Json, source = 'results'): Results {
  const fail = (where: string, what: string): never => {
    throw new ResultsFormatError(`${source}: ${where}: ${what}`);
  };
  const str = (x: Json, where: string): string => (typeof x === 'string' ? x : fail(where, `expected a string, got ${kind(x)}`));
  const num = (x: Json, where: string): number => (typeof x === 'number' && Number.isFinite(x) ? x : fail(where, `expected a number, got ${kind(x)}`));
  const bool = (x: Json, where: string): boolean => (typeof x === 'boolean' ? x : fail(where, `expected true/false, got ${kind(x)}`));
  const obj = (x: Json, where: string): Record<string, Json> => (isObj(x) ? x : fail(where, `expected an object, got ${kind(x)}`));
  const arr = (x: Json, where: string): Json[] => (Array.isArray(x) ? x : fail(where, `expected an array, got ${kind(x)}`));

  const root = obj(v, '$');
  if (root.schema !== RESULTS_SCHEMA) {
    const got = root.schema;
    if (typeof got === 'string' && got.startsWith('svmconf-results/')) {
      fail('$.schema', `"${got}" is a different version of the results format; this svmconf reads "${RESULTS_SCHEMA}"`);
    }
    fail('$.schema', `not an svmconf results file (schema ${got === undefined ? 'missing' : JSON.stringify(got)}, expected "${RESULTS_SCHEMA}")`);
  }
  const generated = str(root.generated, '$.generated');
  if (Number.isNaN(Date.parse(generated))) fail('$.generated', `not a date: ${JSON.stringify(generated)}`);

  const host = obj(root.host, '$.host');
  for (const k of ['vendor', 'modelName', 'kernel']) str(host[k], `$.host.${k}`);
  for (const k of ['family', 'model', 'stepping']) num(host[k], `$.host.${k}`);
  if (host.microcode !== undefined) str(host.microcode, '$.host.microcode');

  const names = new Set<string>();
  arr(root.backends, '$.backends').forEach((b, i) => {
    const w = `$.backends[${i}]`;
    const o = obj(b, w);
    const name = str(o.name, `${w}.name`);
    if (names.has(name)) fail(`${w}.name`, `backend ${JSON.stringify(name)} listed twice`);
    names.add(name);
    // absent in files written before it existed: parseResults fills it in (legacyKind)
    if (o.kind !== undefined && !BACKEND_KINDS.includes(o.kind as BackendKind)) fail(`${w}.kind`, `expected one of ${BACKEND_KINDS.join(', ')}, got ${kind(o.kind)}`);
    bool(o.available, `${w}.available`);
    str(o.reason, `${w}.reason`);
    if (o.version !== undefined) str(o.version, `${w}.version`);
    for (const k of ['family', 'peer']) if (o[k] !== undefined) str(o[k], `${w}.${k}`);
    if (o.emulator !== undefined) {
      const e = obj(o.emulator, `${w}.emulator`);
      for (const k of ['family', 'version']) str(e[k], `${w}.emulator.${k}`);
    }
    if (o.packages !== undefined) {
      const p = obj(o.packages, `${w}.packages`);
      for (const [pkg, v] of Object.entries(p)) str(v, `${w}.packages.${pkg}`);
    }
    if (o.cpu !== undefined) {
      const cpu = obj(o.cpu, `${w}.cpu`);
      for (const k of ['vendor', 'source', 'familyName', 'familySlug']) str(cpu[k], `${w}.cpu.${k}`);
      for (const k of ['family', 'model', 'stepping']) num(cpu[k], `${w}.cpu.${k}`);
      for (const k of ['modelName', 'microcode', 'profile']) if (cpu[k] !== undefined) str(cpu[k], `${w}.cpu.${k}`);
    }
    const feats = obj(o.features, `${w}.features`);
    for (const f of FEATURES) {
      const fo = obj(feats[f], `${w}.features.${f}`);
      bool(fo.present, `${w}.features.${f}.present`);
      bool(fo.absent, `${w}.features.${f}.absent`);
      str(fo.reason, `${w}.features.${f}.reason`);
    }
  });

  const layouts = obj(root.layouts, '$.layouts');
  const layoutSize: Record<string, number> = {};
  for (const [tid, layout] of Object.entries(layouts)) {
    layoutSize[tid] = 0;
    arr(layout, `$.layouts.${tid}`).forEach((f, i) => {
      const w = `$.layouts.${tid}[${i}]`;
      const o = obj(f, w);
      str(o.name, `${w}.name`);
      str(o.doc, `${w}.doc`);
      const type = str(o.type, `${w}.type`);
      if (!(type in FIELD_SIZES)) fail(`${w}.type`, `unknown field type ${JSON.stringify(type)}`);
      num(o.offset, `${w}.offset`);
      if (num(o.size, `${w}.size`) !== FIELD_SIZES[type as FieldType]) fail(`${w}.size`, `${o.size} does not match type ${type}`);
      if (!DECODES.includes(str(o.decode, `${w}.decode`) as FieldDecode)) fail(`${w}.decode`, `unknown decode hint ${JSON.stringify(o.decode)}`);
      layoutSize[tid]! += FIELD_SIZES[type as FieldType];
    });
  }

  const ids = new Set<string>();
  arr(root.cases, '$.cases').forEach((c, i) => {
    const w = `$.cases[${i}]`;
    const o = obj(c, w);
    const id = str(o.id, `${w}.id`);
    if (ids.has(id)) fail(`${w}.id`, `case ${JSON.stringify(id)} listed twice`);
    ids.add(id);
    const template = str(o.template, `${w}.template`);
    // every case is judged on its template's record layout, by every backend the file lists
    const size = layoutSize[template];
    if (size === undefined) fail(`${w}.template`, `no layout for template ${JSON.stringify(template)} in $.layouts`);
    for (const [k, pv] of Object.entries(obj(o.params, `${w}.params`))) str(pv, `${w}.params.${k}`);
    const results = obj(o.results, `${w}.results`);
    for (const b of names) if (!(b in results)) fail(`${w}.results`, `no result for backend ${JSON.stringify(b)}, which $.backends lists (case ${JSON.stringify(id)})`);
    for (const [backend, r] of Object.entries(results)) {
      const rw = `${w}.results.${backend}`;
      if (!names.has(backend)) fail(rw, `a result for backend ${JSON.stringify(backend)}, which $.backends does not list (case ${JSON.stringify(id)})`);
      const ro = obj(r, rw);
      const status = str(ro.status, `${rw}.status`);
      if (!STATUSES.includes(status as Status)) fail(`${rw}.status`, `unknown status ${JSON.stringify(status)}`);
      if (ro.record !== undefined) {
        const rec = str(ro.record, `${rw}.record`);
        if (!/^(?:[0-9a-f]{2})*$/.test(rec)) fail(`${rw}.record`, 'expected lower-case hex, two digits a byte');
      }
      if (status === 'OK' && ro.record === undefined) fail(`${rw}.record`, 'an OK result must have a record');
      if (status === 'OK' && (ro.record as string).length !== 2 * size!) {
        fail(`${rw}.record`, `an OK record of ${(ro.record as string).length / 2} bytes, but the layout of ${template} has ${size} (case ${JSON.stringify(id)})`);
      }
      if (ro.mask !== undefined) {
        const mask = str(ro.mask, `${rw}.mask`);
        if (!/^(?:[0-9a-f]{2})*$/.test(mask)) fail(`${rw}.mask`, 'expected lower-case hex, two digits a byte');
        if (typeof ro.record !== 'string' || mask.length !== ro.record.length) fail(`${rw}.mask`, 'a mask has the length of the record');
      }
      if (ro.reason !== undefined) str(ro.reason, `${rw}.reason`);
      if (ro.seconds !== undefined) num(ro.seconds, `${rw}.seconds`);
      if (ro.note !== undefined) str(ro.note, `${rw}.note`);
      if (ro.torture !== undefined) {
        const t = obj(ro.torture, `${rw}.torture`);
        for (const k of ['restores', 'atExits', 'atTimer', 'every']) num(t[k], `${rw}.torture.${k}`);
        for (const k of ['control', 'inL2']) bool(t[k], `${rw}.torture.${k}`);
        arr(t.msrsLeftOut, `${rw}.torture.msrsLeftOut`).forEach((m, j) => str(m, `${rw}.torture.msrsLeftOut[${j}]`));
      }
    }
  });

  // optional: case id → registry entries that explained its differences (report/deviations.ts)
  if (root.deviations !== undefined) {
    for (const [cid, list] of Object.entries(obj(root.deviations, '$.deviations'))) {
      const w = `$.deviations[${JSON.stringify(cid)}]`;
      if (!ids.has(cid)) fail(w, `case ${JSON.stringify(cid)} is not in $.cases`);
      arr(list, w).forEach((m, i) => {
        const mo = obj(m, `${w}[${i}]`);
        for (const k of ['id', 'backend', 'against']) str(mo[k], `${w}[${i}].${k}`);
        arr(mo.fields, `${w}[${i}].fields`).forEach((f, j) => str(f, `${w}[${i}].fields[${j}]`));
      });
    }
  }
  // optional: warm/cold twins that disagree (report/warmcold.ts)
  if (root.warmCold !== undefined) {
    const wc = obj(root.warmCold, '$.warmCold');
    num(wc.pairs, '$.warmCold.pairs');
    num(wc.compared, '$.warmCold.compared');
    arr(wc.disagreements, '$.warmCold.disagreements').forEach((d, i) => {
      const dobj = obj(d, `$.warmCold.disagreements[${i}]`);
      for (const k of ['cold', 'warm', 'backend', 'why']) str(dobj[k], `$.warmCold.disagreements[${i}].${k}`);
    });
  }
  return v as Results;
}

function kind(x: Json): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (x === undefined) return 'nothing';
  return typeof x === 'object' ? 'an object' : `${typeof x} ${JSON.stringify(x)}`;
}

/**
 * LEGACY: the kind of a backend in a results file written before BackendInfo.kind existed, from
 * the backend names of that time (the only place the report goes by a backend's name): kvm,
 * qemu-kvm and console ran on a real CPU; model, model-l0 and model@<profile> are the model;
 * everything else (qemu-tcg, bochs-*, kvm-tcg: KVM on QEMU's emulated CPU) is an emulator.
 */
function legacyKind(name: string): BackendKind {
  if (['kvm', 'qemu-kvm', 'console'].includes(name)) return 'hardware';
  return name.startsWith('model') ? 'model' : 'emulator';
}

/** Parse and validate results.json text; backends without a kind (older files) get legacyKind's. */
export function parseResults(text: string, source = 'results'): Results {
  let v: Json;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ResultsFormatError(`${source}: not JSON (${(e as Error).message})`);
  }
  const results = validateResults(v, source);
  for (const b of results.backends as Array<Omit<BackendInfo, 'kind'> & { kind?: BackendKind }>) b.kind ??= legacyKind(b.name);
  return results;
}

export async function readResults(path: string): Promise<Results> {
  return parseResults(await readFile(path, 'utf8'), path);
}

/** readResults with a missing or unreadable file said plainly (the path and why). */
export async function readResultsFile(file: string): Promise<Results> {
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
