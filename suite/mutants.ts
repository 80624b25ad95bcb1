// `svmconf mutants`: run the cases on the model once as it is (the reference), once under the
// correct virtual L0 (which must change nothing: the transparency check) and once per mutant
// (model/mutants.ts; L0 mutants under the L0, SVM-model mutants on the plain model), and compare every mutant record with the reference under the reference's
// defined-bits mask, as the report compares backends. A mutant is killed by a case whose status or
// defined record bits differ; one that no case kills survives (the suite cannot see that bug).

import type { Case, CaseResult, Kernel } from '../core/types.ts';
import type { Backend } from '../runner/backend.ts';
import { runKernels } from '../runner/schedule.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { compareCase, formatDiff, maskFromResults } from '../report/compare.ts';
import { findMutant, MUTANTS, type MutantName } from '../model/mutants.ts';
import type { Profile } from '../model/profile.ts';

/** The row of the correct L0 (no mutant) in the table. */
export const NO_MUTANT = '(none: correct L0)';

export interface MutantRow {
  mutant: MutantName | typeof NO_MUTANT;
  layer: 'l0' | 'svm' | '';
  /** Cases whose result differs from the reference (the kill count; for NO_MUTANT: transparency failures). */
  killedBy: Array<{ id: string; why: string }>;
  /** Cases compared (both results present). */
  run: number;
  /** The run stopped after the kernels that gave the first kill (MutantOptions.firstKill). */
  stoppedEarly?: boolean;
}

export interface MutantReport {
  profile: string;
  cases: number;
  rows: MutantRow[];
}

export interface MutantOptions {
  profile: Profile;
  mutants: readonly MutantName[];
  jobs?: number;
  idleTimeoutMs?: number;
  /** Called after each backend's run (progress). */
  onRow?: (row: MutantRow) => void;
  /**
   * Stop each mutant's run at the first batch of kernels (`jobs` at a time, in suite order) that
   * kills it: the kill count is then "first kills" only. The correct L0's row always runs everything.
   */
  firstKill?: boolean;
}

async function runOn(kernels: readonly Kernel[], backend: Backend, opts: MutantOptions): Promise<Map<string, CaseResult | undefined>> {
  const info = await backend.probe();
  const byCase = await runKernels(kernels, [{ backend, info }], { jobs: opts.jobs ?? 1, idleTimeoutMs: opts.idleTimeoutMs ?? 30_000 });
  return new Map([...byCase].map(([id, r]) => [id, r[backend.name]]));
}

/** Why `got` differs from `ref` for case `c` (status, or the defined record bits), or undefined if it does not. */
export function difference(c: Case, ref: CaseResult | undefined, got: CaseResult | undefined): string | undefined {
  if (!ref || !got) return ref === got ? undefined : `no result from ${ref ? 'the mutant' : 'the reference'}`;
  if (ref.status !== got.status) return `status ${ref.status} → ${got.status}${got.reason ? ` (${got.reason})` : ''}`;
  if (ref.status !== 'OK') return undefined;
  const cmp = compareCase(
    { id: c.id, template: c.template.id, params: c.params, results: { reference: ref, mutant: got } },
    c.template.record,
    { preference: ['reference'], backends: ['reference', 'mutant'], definedMask: maskFromResults },
  );
  if (cmp.verdict !== 'diverge') return undefined;
  return cmp.diffs.filter((d) => d.strict.length > 0).map(formatDiff).join('; ');
}

/** Run the cases (built into `kernels`) under each mutant and compare with the plain model. */
export async function runMutants(kernels: readonly Kernel[], opts: MutantOptions): Promise<MutantReport> {
  const cases = kernels.flatMap((k) => k.cases);
  const reference = await runOn(kernels, modelBackend({ profile: opts.profile }), opts);
  const rows: MutantRow[] = [];
  for (const name of [NO_MUTANT, ...opts.mutants] as const) {
    const mutants = name === NO_MUTANT ? [] : [name];
    // an L0 mutant runs under the virtual L0, an SVM-model mutant on the plain model (so a kill is
    // the mutant's alone; the correct L0 is transparent, the NO_MUTANT row checks that)
    const l0 = name === NO_MUTANT || findMutant(name).layer === 'l0';
    const backend = modelBackend({ profile: opts.profile, l0, mutants });
    const row: MutantRow = { mutant: name, layer: name === NO_MUTANT ? '' : findMutant(name).layer, killedBy: [], run: 0 };
    const batch = opts.firstKill && name !== NO_MUTANT ? Math.max(1, opts.jobs ?? 1) : kernels.length;
    for (let i = 0; i < kernels.length; i += batch) {
      const part = kernels.slice(i, i + batch);
      const got = await runOn(part, backend, opts);
      for (const c of part.flatMap((k) => k.cases)) {
        row.run++;
        const why = difference(c, reference.get(c.id), got.get(c.id));
        if (why !== undefined) row.killedBy.push({ id: c.id, why });
      }
      if (row.killedBy.length > 0 && i + batch < kernels.length) {
        row.stoppedEarly = true;
        break;
      }
    }
    rows.push(row);
    opts.onRow?.(row);
  }
  return { profile: opts.profile.name, cases: cases.length, rows };
}

/** Every mutant name, in catalogue order. */
export function allMutantNames(): MutantName[] {
  return MUTANTS.map((m) => m.name);
}

/** The kill table (mutant | layer | killed? | first killing case | killed / run), plain text. */
export function formatKillTable(r: MutantReport): string {
  const head = ['mutant', 'layer', 'killed', 'first killing case', 'killed/run'];
  const body = r.rows.map((row) => {
    const first = row.killedBy[0]?.id ?? '—';
    const killed = row.mutant === NO_MUTANT
      ? (row.killedBy.length === 0 ? 'transparent' : 'NOT TRANSPARENT')
      : (row.killedBy.length > 0 ? 'killed' : 'SURVIVED');
    return [row.mutant, row.layer || '—', killed, first, `${row.killedBy.length}/${row.run}${row.stoppedEarly ? ' (first kills)' : ''}`];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
  return `${out.join('\n')}\n`;
}

/** Mutants no case killed, and whether the correct L0 changed any record. */
export function survivors(r: MutantReport): { survived: string[]; opaque: boolean } {
  return {
    survived: r.rows.filter((x) => x.mutant !== NO_MUTANT && x.killedBy.length === 0).map((x) => x.mutant),
    opaque: r.rows.some((x) => x.mutant === NO_MUTANT && x.killedBy.length > 0),
  };
}
