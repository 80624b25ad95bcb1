// The version view (docs/peers.md "The version view"): what a peer's developer looks at first.
// A run may hold several columns of one backend family — the host's QEMU 7.2 as `qemu-tcg`, the
// pinned QEMU 11.1 as `qemu-tcg@11.1` — so a fix shows as a change between two columns of one
// run. Per family, how each version's cases came out against the model; per registry entry of
// that family, which versions show it in this run, which no longer do (and what the registry
// says fixed it), and which versions the registry has seen it on.
//
// Everything here is counted from the run's comparison (report/compare.ts); the registry's
// `versions` (report/deviations.ts) are shown beside what the run saw, never instead of it.

import type { Results } from '../core/types.ts';
import { columnFamily } from '../core/columns.ts';
import { globToRegExp } from '../core/glob.ts';
import type { CaseComparison, Comparison } from './compare.ts';
import type { Deviation } from './deviations.ts';
import { columnOutcome } from './conformance.ts';

/** One column's cases against its reference. */
export interface ColumnTally {
  column: string;
  family: string;
  version: string;
  /** The pinned peer it runs (runner/peers/pins.yaml), absent for the host's packages. */
  peer?: string;
  packages?: Record<string, string>;
  /** The emulator the column's guest runs on (BackendInfo.emulator), for shows_through entries. */
  emulator?: { family: string; version: string };
  /** Cases run (status OK) and how they compared; `open` counts OK cases whose outcome the manual leaves open. */
  ok: number;
  agree: number;
  known: number;
  open: number;
  diverge: number;
  /** SKIP or UNSUPPORTED. */
  notRun: number;
  /** CRASH, TIMEOUT, ERROR. */
  problems: number;
}

/**
 * How one registry entry stands on one column of its family in this run.
 *   shows     the column's version is in the entry's range and the entry explained `cases` cases
 *   unseen    in range, but no case of the column needed the entry (gone, or the cases did not run)
 *   gone      out of range, and no OK case of the entry differs from the reference in the entry's
 *             fields: fixed there
 *   differs   out of range, and some of the entry's cases still differ in its fields (`cases` of
 *             them): another entry (`now`) or a divergence says how
 *   not-run   no case of the entry ran OK on the column
 */
export type EntryState = 'shows' | 'unseen' | 'gone' | 'differs' | 'not-run';

export interface EntryOnColumn {
  column: string;
  version: string;
  state: EntryState;
  /** shows: cases explained; gone: cases that agree; differs: cases that still differ. */
  cases: number;
  /** The cases of the entry that ran OK on the column. */
  ran: number;
  /** differs: the entries that explain those cases now, if any. */
  now: string[];
}

export interface EntryVersions {
  id: string;
  family: string;
  summary: string;
  range: string;
  checked: string[];
  fixed?: { in: string; by: string };
  /** Its finding (expected/findings.yaml), when the register was read. */
  finding?: string;
  columns: EntryOnColumn[];
}

export interface FamilyVersions {
  family: string;
  columns: ColumnTally[];
  entries: EntryVersions[];
}

/** results.json's and the matrix's `versions`: one block per family with two or more columns, or with a pinned peer. */
export interface VersionView {
  families: FamilyVersions[];
}

/** Case id → its outcome in results.json, read once per view. */
type CasesById = ReadonlyMap<string, Results['cases'][number]>;

function tallies(results: Results, cmp: Comparison, byId: CasesById): ColumnTally[] {
  return results.backends
    .filter((b) => b.available && b.kind !== 'model')
    .map((b) => {
      const t: ColumnTally = {
        column: b.name, family: columnFamily(b), version: b.version ?? '?',
        ...(b.peer ? { peer: b.peer } : {}), ...(b.packages ? { packages: b.packages } : {}), ...(b.emulator ? { emulator: b.emulator } : {}),
        ok: 0, agree: 0, known: 0, open: 0, diverge: 0, notRun: 0, problems: 0,
      };
      for (const c of cmp.cases) {
        const o = columnOutcome(c, byId.get(c.id)?.results[b.name], b.name);
        if (o === 'missing') continue;
        if (o === 'notRun') t.notRun++;
        else if (o === 'problem') t.problems++;
        else {
          // an OK record: the reference itself counts as run, and as open in an open case
          t.ok++;
          if (o === 'reference') {
            if (c.verdict === 'open') t.open++;
          } else t[o]++;
        }
      }
      return t;
    });
}

function entryOn(entry: Deviation, col: ColumnTally, byId: CasesById, cmp: Comparison, globs: RegExp[]): EntryOnColumn {
  const mine = cmp.cases.filter((c) => globs.some((g) => g.test(c.id)) && byId.get(c.id)?.results[col.column]?.status === 'OK');
  const base = { column: col.column, version: col.version, ran: mine.length, now: [] as string[] };
  if (mine.length === 0) return { ...base, state: 'not-run', cases: 0 };
  const explained = mine.filter((c) => c.deviations.some((m) => m.id === entry.id && (m.backend === col.column || m.against === col.column)));
  // an entry of the column's emulator is in range by the emulator's version
  const version = entry.backend === col.family ? col.version : col.emulator?.version ?? '';
  if (entry.versions.match.test(version)) return { ...base, state: explained.length > 0 ? 'shows' : 'unseen', cases: explained.length };
  // out of range: does the column still differ in the entry's own fields? (other fields of the same
  // cases may differ for other reasons, which other entries describe)
  const fieldDiffs = (c: CaseComparison) => c.diffs.filter((d) => entry.fields.includes(d.field) && d.strict.includes(col.column));
  const differing = mine.filter((c) => fieldDiffs(c).length > 0);
  if (differing.length === 0) return { ...base, state: 'gone', cases: mine.length };
  const now = [...new Set(differing.flatMap((c) => fieldDiffs(c).flatMap((d) => d.known.filter((k) => k.backend === col.column).map((k) => k.id))))];
  return { ...base, state: 'differs', cases: differing.length, now };
}

/**
 * The version view of a compared run: families that have a pinned peer column or more than one
 * column, with each column's tally and each registry entry of the family on each column.
 */
export function versionView(results: Results, cmp: Comparison, registry: readonly Deviation[]): VersionView {
  const byId: CasesById = new Map(results.cases.map((c) => [c.id, c] as const));
  const cols = tallies(results, cmp, byId);
  const families = [...new Set(cols.map((c) => c.family))]
    .map((family) => ({ family, columns: cols.filter((c) => c.family === family) }))
    .filter((f) => f.columns.length > 1 || f.columns.some((c) => c.peer !== undefined));
  return {
    families: families.map(({ family, columns }) => ({
      family,
      columns,
      entries: registry
        .filter((e) => e.backend === family || e.showsThrough.includes(family))
        .map((e) => {
          const globs = e.cases.map(globToRegExp);
          return {
            id: e.id, family, summary: e.summary, range: e.versions.range, checked: e.versions.checked,
            ...(e.versions.fixed ? { fixed: e.versions.fixed } : {}), ...(e.finding ? { finding: e.finding } : {}),
            columns: columns.map((c) => entryOn(e, c, byId, cmp, globs)),
          };
        }),
    })),
  };
}

/** One entry on one column, in a few words: `shows (40)`, `gone (40 agree)`, `differs (3: qemu-x)`. */
export function entryStateText(s: EntryOnColumn): string {
  switch (s.state) {
    case 'shows': return `shows (${s.cases})`;
    case 'unseen': return `in range, not seen (${s.ran} ran)`;
    case 'gone': return `gone (${s.cases} agree)`;
    case 'differs': return `differs (${s.cases}${s.now.length ? `: ${s.now.join(', ')}` : ', diverge'})`;
    case 'not-run': return 'not run';
  }
}

/**
 * A version as a reader names it: kvm-tcg's version text is a sentence about the KVM API, the
 * kernel and the QEMU it runs in (runner/backends/kvm-tcg.ts); `Linux 7.3.4+deb13-amd64 on QEMU 11.1.3 TCG`
 * says what tells two of them apart. Other versions are kept as they are.
 */
export function shortVersion(v: string): string {
  const m = /Linux (\S+?),.*\bin (QEMU \S+) TCG/.exec(v);
  return m ? `Linux ${m[1]} on ${m[2]} TCG` : v;
}

/** An entry's versions in a line: what the registry has seen it on and what fixed it. */
export function entryVersionsText(e: Pick<EntryVersions, 'checked' | 'fixed' | 'finding'>): string {
  const seen = `${e.finding ? `finding ${e.finding}; ` : ''}seen on ${e.checked.map(shortVersion).join(', ')}`;
  return e.fixed ? `${seen}; fixed in ${e.fixed.in} (${e.fixed.by})` : `${seen}; still present in ${e.checked[e.checked.length - 1] ?? '?'}`;
}

/** A column's tally in a line: `QEMU 11.1.3: 409 agree, 120 known, 0 diverge of 540 run`. */
export function tallyText(t: ColumnTally): string {
  return `${shortVersion(t.version)}: ${t.agree} agree, ${t.known} known, ${t.open} open, ${t.diverge} diverge of ${t.ok} run` +
    `${t.notRun ? `, ${t.notRun} not run` : ''}${t.problems ? `, ${t.problems} problems` : ''}`;
}
