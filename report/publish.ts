// `svmconf publish`: results from several machines and runs merged into one matrix per CPU family
// (model/profiles/families.ts). This module builds the merged matrix (the data of matrix.json);
// report/publish-render.ts turns it into Markdown, HTML and JUnit XML.
//
// How runs are merged:
//   - A run (one results.json) is filed under the family of its CPU (report/run-cpu.ts runCpu): its
//     hardware backend's CPU (kvm, console), else the model's profile. Two runs of different
//     families give two sections. Results from before family detection get their backends' CPUs
//     from the runner first (suite/publish.ts withCpus).
//   - Within a family, columns are per (machine, backend): machine = the host's CPU name, microcode
//     and kernel. The model's columns are per profile (`model (amd-19h)`), whichever machine ran
//     them, since the model is the same everywhere.
//   - Duplicates (the same column in several runs): per case, the newest run (results.json
//     `generated`) that has a result wins; an older run whose status or record differs is kept as
//     a note on the cell (`unstable`), never hidden.
//   - Each run is compared on its own, as `svmconf run` does (its reference, the deviation
//     registry); a cell shows its run's verdict for that backend. A case's verdict in the section is
//     the worst over the runs that have it: diverge, known, agree, single, none.
//   - Recorded hardware (expected/hw/<family>/<cpu>/, report/hwrecords.ts) adds a column per
//     recorded CPU, compared with the section's model column (the model vs recorded hardware).

import type { BackendInfo, CaseOutcome, CaseResult, CpuIdentity, DeviationMatch, HostInfo, RecordField, Results, Status } from '../core/types.ts';
import { DEFAULT_PROFILE } from '../model/profile.ts';
import { isRunModel, runCpu } from './run-cpu.ts';
import { versionView, type VersionView } from './versions.ts';
import { compareCase, compareResults, digest, type CaseComparison, type FieldDiff, type Verdict } from './compare.ts';
import type { Deviation } from './deviations.ts';
import { cellFor, resultDetail, type CellKind } from './format.ts';
import { columnHead, knownEntries, outcomeOf, tallyColumn, type CaseOnColumn, type ColumnConformance } from './conformance.ts';
import type { HwRecording } from './hwrecords.ts';

export const MATRIX_SCHEMA = 'svmconf-matrix/1' as const;

/** Worst first: the section verdict of a case is the first of these any run gives. */
export const VERDICT_RANK: readonly Verdict[] = ['diverge', 'known', 'open', 'agree', 'single', 'none'];

export interface PublishInput {
  /** Where the results came from (a path), for messages and provenance. */
  source: string;
  results: Results;
}

export type ColumnKind = 'model' | 'emulator' | 'hardware' | 'recorded';

export interface MatrixColumn {
  key: string;
  backend: string;
  kind: ColumnKind;
  /** The machine that ran it (`any` for the model; the recorded CPU for a recording). */
  machine: string;
  cpu?: CpuIdentity;
  version?: string;
  /** Sources that gave this column results, newest first. */
  sources: string[];
}

export interface MatrixDiffValue {
  column: string;
  text: string;
}

export interface MatrixDiff {
  field: string;
  informational: boolean;
  values: MatrixDiffValue[];
  /** Columns whose difference in this field is a known deviation, with the entry id. */
  known: Array<{ column: string; id: string }>;
  /** Columns that differ in a defined bit no entry explains. */
  diverging: string[];
}

export interface MatrixComparison {
  /** The run (source) or `recorded <cpu>` the comparison comes from. */
  origin: string;
  reference: string;
  verdict: Verdict;
  diffs: MatrixDiff[];
  deviations: Array<DeviationMatch & { column: string }>;
}

export interface MatrixCell {
  status: Status;
  kind: CellKind;
  text: string;
  digest?: string;
  reason?: string;
  source: string;
  /** Known-deviation entry ids for this cell. */
  deviations?: string[];
  /** Older runs of the same column whose result differs (status or record). */
  unstable?: Array<{ source: string; status: Status; digest?: string }>;
}

export interface MatrixCase {
  id: string;
  template: string;
  params: Record<string, string>;
  verdict: Verdict;
  verdictText: string;
  cells: Record<string, MatrixCell>;
  /** Comparisons that found differences (informational ones included), per run / recording. */
  comparisons: MatrixComparison[];
}

export interface MatrixRun {
  source: string;
  generated: string;
  host: HostInfo;
  machine: string;
  backends: Array<{ name: string; available: boolean; version?: string; cpu?: CpuIdentity }>;
}

export interface FamilySection {
  slug: string;
  name: string;
  family: number;
  profile?: string;
  /** Which part of the table put runs here: the CPUs that decided (one line each). */
  cpus: string[];
  runs: MatrixRun[];
  columns: MatrixColumn[];
  cases: MatrixCase[];
  recorded: Array<{ column: string; cpu: string; dir: string; provenance: HwRecording['provenance'] }>;
  summary: { cases: number; verdicts: Record<Verdict, number>; problems: number; unstable: number };
  /** Registry entries used in this section, with the cases they explain. */
  deviations: Array<{ id: string; cases: string[] }>;
  /**
   * Each column but the model's own (and the reference model columns beside a Bochs flavour)
   * counted on its own, per template and per parameter value, by the rule of `svmconf run`
   * (report/conformance.ts): for one run, the same numbers as its run view.
   */
  conformance: ColumnConformance[];
}

export interface Matrix {
  schema: typeof MATRIX_SCHEMA;
  generated: string;
  inputs: Array<{ source: string; generated: string; family: string }>;
  families: FamilySection[];
  /** How duplicates were handled, for the reader. */
  mergeRule: string;
  /**
   * Per run with several versions of a backend, or a pinned peer: the version view
   * (report/versions.ts), each run compared on its own as everywhere in publish.
   */
  versions: Array<{ source: string; machine: string; view: VersionView }>;
}

export const MERGE_RULE = 'columns per (machine, backend), the model per profile; when several runs give the same column, the newest run (results.json `generated`) wins per case, and an older result that differs is shown as unstable; each run is compared on its own and a case\'s verdict is the worst over its runs (diverge, known, agree, single, none).';

export class PublishError extends Error {
  override name = 'PublishError';
}

/** The machine a run came from: CPU name, microcode when readable, kernel. */
export function machineLabel(h: HostInfo): string {
  return `${h.modelName || h.vendor}${h.microcode ? ` ucode ${h.microcode}` : ''}, Linux ${h.kernel}`;
}

/** The profile the model backend of a run followed (from results written before BackendInfo.cpu: its version text). */
export function modelProfileOf(b: BackendInfo): string {
  return b.cpu?.profile && b.cpu.source.startsWith('profile ') ? b.cpu.source.slice('profile '.length)
    : /profile ([a-z0-9-]+)/.exec(b.version ?? '')?.[1] ?? DEFAULT_PROFILE.name;
}

/**
 * A backend's column: the run's model per profile, whichever machine ran it; every other backend
 * per machine, a reference model column (`model@<profile>`, run beside a Bochs flavour) among the
 * emulators it stands beside.
 */
function columnOf(b: BackendInfo, machine: string): { key: string; kind: ColumnKind; machine: string } {
  if (isRunModel(b)) return { key: `${b.name} (${modelProfileOf(b)})`, kind: 'model', machine: 'any' };
  const kind: ColumnKind = b.kind === 'hardware' ? 'hardware' : 'emulator';
  return { key: `${b.name} @ ${machine}`, kind, machine };
}


function diffsOf(cmp: CaseComparison, colOf: (backend: string) => string): MatrixDiff[] {
  return cmp.diffs.map((d: FieldDiff) => ({
    field: d.field,
    informational: d.informational,
    values: d.values.map((v) => ({ column: colOf(v.backend), text: v.text })),
    known: d.known.map((k) => ({ column: colOf(k.backend), id: k.id })),
    diverging: d.strict.filter((b) => !d.known.some((k) => k.backend === b)).map(colOf),
  }));
}

function worst(verdicts: readonly Verdict[]): Verdict {
  for (const v of VERDICT_RANK) if (verdicts.includes(v)) return v;
  return 'none';
}

export interface PublishOptions {
  deviations?: readonly Deviation[];
  /** Recorded hardware per family slug (report/hwrecords.ts readHwFamily). */
  recorded?: ReadonlyMap<string, readonly HwRecording[]>;
  now?: Date;
}

/** Merge runs into one section per CPU family. */
export function buildMatrix(inputs: readonly PublishInput[], opts: PublishOptions = {}): Matrix {
  if (inputs.length === 0) throw new PublishError('publish needs at least one results.json');
  const prepared = inputs.map((i) => {
    const results = i.results;
    const family = runCpu(results.backends, results.host);
    const comparison = compareResults(results, { deviations: opts.deviations ?? [] });
    return { ...i, results, family, comparison, machine: machineLabel(results.host) };
  });
  // newest first, so the first run that has a case wins
  prepared.sort((a, b) => Date.parse(b.results.generated) - Date.parse(a.results.generated));

  const slugs: string[] = [];
  for (const p of [...prepared].reverse()) if (!slugs.includes(p.family.familySlug)) slugs.push(p.family.familySlug);
  const families: FamilySection[] = [];
  for (const slug of slugs.sort()) {
    const runs = prepared.filter((p) => p.family.familySlug === slug);
    const fam = runs[0]!.family;
    const columns: MatrixColumn[] = [];
    const colKey = new Map<string, Map<string, string>>(); // source → backend → column key
    const infoOf = new Map<string, BackendInfo>(); // column key → the backend of its newest run
    // column order: model first, then emulators, then hardware; within a kind, first seen
    for (const kind of ['model', 'emulator', 'hardware'] as const) {
      for (const r of [...runs].reverse()) {
        for (const b of r.results.backends) {
          const c = columnOf(b, r.machine);
          if (c.kind !== kind) continue;
          let m = colKey.get(r.source);
          if (!m) colKey.set(r.source, (m = new Map()));
          m.set(b.name, c.key);
          let col = columns.find((x) => x.key === c.key);
          if (!col) {
            col = { key: c.key, backend: b.name, kind: c.kind, machine: c.machine, ...(b.cpu ? { cpu: b.cpu } : {}), ...(b.version ? { version: b.version } : {}), sources: [] };
            columns.push(col);
          }
          col.sources.unshift(r.source);
          infoOf.set(c.key, b);
        }
      }
    }
    const keyOf = (source: string, backend: string): string => colKey.get(source)?.get(backend) ?? backend;

    // cases in first-seen order over the runs, oldest run first (the suite's order)
    const caseIds: string[] = [];
    const outcome = new Map<string, CaseOutcome>();
    for (const r of [...runs].reverse()) {
      for (const c of r.results.cases) {
        if (!outcome.has(c.id)) {
          caseIds.push(c.id);
          outcome.set(c.id, c);
        }
      }
    }
    const layouts = new Map<string, RecordField[]>();
    for (const r of runs) for (const [t, l] of Object.entries(r.results.layouts)) if (!layouts.has(t)) layouts.set(t, l);

    const cases: MatrixCase[] = [];
    const deviationCases = new Map<string, Set<string>>();
    let unstableCount = 0;
    for (const id of caseIds) {
      const first = outcome.get(id)!;
      const cells: Record<string, MatrixCell> = {};
      const comparisons: MatrixComparison[] = [];
      const verdicts: Verdict[] = [];
      const noteEntries = (cmp: CaseComparison): void => {
        for (const m of cmp.deviations) deviationCases.set(m.id, (deviationCases.get(m.id) ?? new Set<string>()).add(id));
      };
      for (const r of runs) {
        const c = r.results.cases.find((x) => x.id === id);
        if (!c) continue;
        const cmp = r.comparison.cases.find((x) => x.id === id)!;
        verdicts.push(cmp.verdict);
        const colOf = (b: string) => keyOf(r.source, b);
        if (cmp.diffs.length > 0) {
          comparisons.push({
            origin: r.source, reference: colOf(cmp.reference ?? ''), verdict: cmp.verdict, diffs: diffsOf(cmp, colOf),
            deviations: cmp.deviations.map((m) => ({ ...m, fields: [...m.fields], column: colOf(m.backend) })),
          });
        }
        noteEntries(cmp);
        for (const [backend, result] of Object.entries(c.results)) {
          const key = colOf(backend);
          const existing = cells[key];
          if (existing) {
            // an older run of the same column: keep the newer result, note a difference
            if (existing.status !== result.status || existing.digest !== (result.status === 'OK' ? digest(result.record ?? '') : undefined)) {
              const u = { source: r.source, status: result.status, ...(result.record && result.status === 'OK' ? { digest: digest(result.record) } : {}) };
              existing.unstable = [...(existing.unstable ?? []), u];
            }
            continue;
          }
          const cell = cellFor(cmp, result, backend);
          const ids = knownEntries(cmp, backend);
          cells[key] = {
            status: result.status, kind: cell.kind, text: cell.text, source: r.source,
            ...(result.status === 'OK' && result.record !== undefined ? { digest: digest(result.record) } : {}),
            ...(resultDetail(result) ? { reason: resultDetail(result) } : {}),
            ...(cell.kind === 'known' && ids.length ? { deviations: ids } : {}),
          };
        }
      }
      // recorded hardware against the section's model column (newest model result of the family's profile)
      const recs = opts.recorded?.get(slug) ?? [];
      for (const rec of recs) {
        const e = rec.cases.get(id);
        const key = recordedKey(rec);
        if (!e) continue;
        const hwResult: CaseResult = { status: e.status, ...(e.record ? { record: e.record } : {}), ...(e.reason ? { reason: e.reason } : {}) };
        const modelCol = columns.find((c) => c.kind === 'model' && c.backend === 'model' && (!fam.profile || c.key.endsWith(`(${fam.profile})`)))
          ?? columns.find((c) => c.kind === 'model');
        const modelRun = modelCol ? runs.find((r) => r.results.cases.some((c) => c.id === id && c.results[modelCol.backend]) && keyOf(r.source, modelCol.backend) === modelCol.key) : undefined;
        const modelResult = modelRun?.results.cases.find((c) => c.id === id)?.results[modelCol!.backend];
        // the recording under its backend's name (the registry's entries are per backend), unless that is the model's own (a forced recording)
        const hwName = rec.provenance.backend.name === 'model' ? 'recorded-model' : rec.provenance.backend.name;
        const pair: CaseOutcome = { id, template: first.template, params: first.params, results: { ...(modelResult ? { model: modelResult } : {}), [hwName]: hwResult } };
        const versions = { [hwName]: rec.provenance.backend.version };
        const cmp = compareCase(pair, layouts.get(first.template) ?? rec.layouts.get(first.template), { deviations: opts.deviations ?? [], versions, backends: ['model', hwName] });
        const colOf = (b: string) => (b === 'model' ? modelCol?.key ?? 'model' : key);
        const cell = cellFor(cmp, hwResult, hwName);
        if (modelResult) verdicts.push(cmp.verdict);
        cells[key] = {
          status: hwResult.status, kind: cell.kind, text: cell.text, source: rec.dir,
          ...(hwResult.record && hwResult.status === 'OK' ? { digest: digest(hwResult.record) } : {}),
          ...(resultDetail(hwResult) ? { reason: resultDetail(hwResult) } : {}),
          ...(cmp.deviations.length && cell.kind === 'known' ? { deviations: [...new Set(cmp.deviations.map((m) => m.id))] } : {}),
        };
        // an entry a recording needs is used in the section too (its Known deviations list, the links to it)
        noteEntries(cmp);
        if (cmp.diffs.length > 0) {
          comparisons.push({
            origin: `recorded ${rec.cpu}`, reference: colOf(cmp.reference ?? ''), verdict: cmp.verdict, diffs: diffsOf(cmp, colOf),
            deviations: cmp.deviations.map((m) => ({ ...m, fields: [...m.fields], column: colOf(m.backend) })),
          });
        }
      }
      if (Object.values(cells).some((c) => c.unstable)) unstableCount++;
      const verdict = worst(verdicts);
      const allDevIds = [...new Set(comparisons.flatMap((c) => c.deviations.map((m) => m.id)))];
      const vText = verdict === 'known' ? `known deviation (${allDevIds.join(', ')})`
        : verdict === 'agree' && comparisons.length > 0 ? 'agree*' : verdict;
      cases.push({ id, template: first.template, params: first.params, verdict, verdictText: vText, cells, comparisons });
    }
    // recorded columns go last
    for (const rec of opts.recorded?.get(slug) ?? []) {
      const p = rec.provenance;
      columns.push({
        key: recordedKey(rec), backend: p.backend.name, kind: 'recorded', machine: p.cpu.name,
        cpu: { vendor: p.cpu.vendor, family: p.cpu.family, model: p.cpu.model, stepping: p.cpu.stepping, modelName: p.cpu.name, microcode: p.cpu.microcode, source: `recorded ${p.recorded.slice(0, 10)}`, familyName: p.family.name, familySlug: p.family.slug, ...(p.family.profile ? { profile: p.family.profile } : {}) },
        version: p.backend.version, sources: [rec.dir],
      });
    }
    const verdictsCount: Record<Verdict, number> = { agree: 0, open: 0, known: 0, diverge: 0, single: 0, none: 0 };
    for (const c of cases) verdictsCount[c.verdict]++;
    const problems = cases.reduce((n, c) => n + Object.values(c.cells).filter((x) => x.kind === 'problem').length, 0);
    const cpus = [...new Set(runs.map((r) => `${r.family.familyName}: ${r.family.source}${r.family.modelName ? ` (${r.family.modelName})` : ''}`))];
    families.push({
      slug, name: fam.familyName, family: fam.family, ...(fam.profile ? { profile: fam.profile } : {}), cpus,
      runs: runs.map((r) => ({
        source: r.source, generated: r.results.generated, host: r.results.host, machine: r.machine,
        backends: r.results.backends.map((b) => ({ name: b.name, available: b.available, ...(b.version ? { version: b.version } : {}), ...(b.cpu ? { cpu: b.cpu } : {}) })),
      })),
      columns, cases,
      recorded: (opts.recorded?.get(slug) ?? []).map((rec) => ({ column: recordedKey(rec), cpu: rec.cpu, dir: rec.dir, provenance: rec.provenance })),
      summary: { cases: cases.length, verdicts: verdictsCount, problems, unstable: unstableCount },
      deviations: [...deviationCases].map(([id, s]) => ({ id, cases: [...s] })),
      conformance: columns
        .filter((col) => col.kind !== 'model' && infoOf.get(col.key)?.kind !== 'model')
        .map((col) => {
          const b = infoOf.get(col.key);
          const head = { ...(b ? columnHead(b, col.key) : { column: col.key }), version: col.version ?? '?' };
          return tallyColumn(head, cases.map((c) => caseOnColumn(c, col.key)), opts.deviations ?? []);
        }),
    });
  }
  return {
    schema: MATRIX_SCHEMA,
    generated: (opts.now ?? new Date()).toISOString(),
    inputs: prepared.map((p) => ({ source: p.source, generated: p.results.generated, family: p.family.familySlug })),
    families,
    mergeRule: MERGE_RULE,
    versions: prepared
      .map((p) => ({ source: p.source, machine: p.machine, view: versionView(p.results, p.comparison, opts.deviations ?? []) }))
      .filter((v) => v.view.families.length > 0),
  };
}

/** A case of the merged matrix on one column, for conformance: its cell's kind, entries and reason. */
function caseOnColumn(c: MatrixCase, key: string): CaseOnColumn {
  const cell = c.cells[key];
  const outcome = cell ? outcomeOf(cell.kind, c.verdict === 'open') : 'missing';
  return {
    template: c.template, params: c.params, outcome,
    entries: outcome === 'known' ? cell?.deviations ?? [] : [],
    ...(cell ? { reason: cell.reason || cell.status } : {}),
  };
}

function recordedKey(rec: HwRecording): string {
  // the directory name: unique within the family, and it names the CPU (the full name is in the column's CPU)
  return `recorded ${rec.provenance.backend.name} @ ${rec.cpu}`;
}

/** Exit code of publish: 2 problems, 1 divergences, 0 otherwise (as `svmconf run`). */
export function publishExitCode(m: Matrix): 0 | 1 | 2 {
  if (m.families.some((f) => f.summary.problems > 0)) return 2;
  if (m.families.some((f) => f.summary.verdicts.diverge > 0)) return 1;
  return 0;
}
