// The merged matrix (report/publish.ts) as a KCIDB report: the JSON that KernelCI's common results
// database takes with `kcidb-submit`, in I/O schema v5.3 (kcidb_io/schema/v05_03.py of the
// kernelci/kcidb-io repository; docs/publishing.md "KCIDB" has the mapping and how to submit).
//
// KCIDB knows checkouts (the code tested), builds (of a checkout) and tests (run on a build). svmconf
// has runs, columns and cases, so:
//   - one checkout per run (one results.json), and one per recorded-hardware directory;
//   - one build per column and run: a build names one checkout, so a column that takes results from
//     two runs (publish keeps the newest per case) is two builds, each holding its own run's tests;
//   - one test per case and column, on the build of the run its cell came from (a column without a
//     result for the case: the build of the column's newest run), its status from the cell's kind;
//   - the file is a series of reports, one JSON value a line, as kcidb-submit reads them (renderKcidb).
// Ids are made of what the results say (the run's date, host and backends, the backend, the case id),
// never of the paths given or of the time of the export, so the same results give the same ids again.

import { createHash } from 'node:crypto';
import type { Deviation } from './deviations.ts';
import { caseLabel, type CellKind } from './format.ts';
import { columnDiffLines } from './publish-render.ts';
import type { FamilySection, Matrix, MatrixCase, MatrixColumn } from './publish.ts';
import { writeFileAtomic } from './results.ts';

/** The schema version the report follows and says it follows in `version`. */
export const KCIDB_SCHEMA = { major: 5, minor: 3 } as const;
export const KCIDB_SCHEMA_NAME = `KCIDB I/O schema v${KCIDB_SCHEMA.major}.${KCIDB_SCHEMA.minor}`;
/** The origin: the name KCIDB knows the submitting system by, the prefix of every id. */
export const KCIDB_ORIGIN = 'svmconf';
/** The root of svmconf's tests in KCIDB's test tree (a test's `path` starts with it). */
export const KCIDB_ROOT_PATH = 'svmconf';
/** The schema's limit on `log_excerpt`, in characters. */
const LOG_EXCERPT_MAX = 16384;

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

/**
 * A cell's kind as a KCIDB test status (the schema's definitions in its `status`):
 *   PASS   the record equals the reference on every defined bit, or is the reference;
 *   FAIL   a defined bit differs, and also when a registry entry explains it: a known deviation is
 *          the peer's own wrong value (the entry and its finding are in misc), so upstream sees it;
 *   ERROR  CRASH, TIMEOUT or ERROR: the case did not complete, the code's status is unknown;
 *   MISS   no result from that column at all;
 *   SKIP   SKIP or UNSUPPORTED: the case does not apply there (the reason is in log_excerpt);
 *   DONE   the only OK record of the case: it ran, but there was nothing to compare it with.
 */
export const KCIDB_STATUS: Readonly<Record<CellKind, KcidbStatus>> = {
  reference: 'PASS', agree: 'PASS', informational: 'PASS', diverge: 'FAIL', known: 'FAIL',
  problem: 'ERROR', missing: 'MISS', notrun: 'SKIP', single: 'DONE',
};

export interface KcidbCheckout { id: string; origin: string; start_time: string; comment: string; misc: Record<string, unknown> }
export interface KcidbBuild { id: string; checkout_id: string; origin: string; start_time: string; architecture: string; comment: string; misc: Record<string, unknown> }
export interface KcidbTest {
  id: string; build_id: string; origin: string; path: string; status: KcidbStatus; start_time: string; comment: string;
  log_excerpt?: string; environment: { comment: string }; misc: Record<string, unknown>;
}
/** One report (one submission): the schema lets any list be absent. */
export interface KcidbReport {
  version: { major: number; minor: number };
  checkouts?: KcidbCheckout[];
  builds?: KcidbBuild[];
  tests?: KcidbTest[];
}

export class KcidbError extends Error {
  override name = 'KcidbError';
}

const short = (parts: readonly unknown[]): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
const id = (local: string): string => `${KCIDB_ORIGIN}:${local}`;

/**
 * A test's path: `svmconf.<template id>.<param>-<value>…`, one node per parameter in the case id's
 * order. The schema's path nodes take letters, digits, `_` and `-` only: a `=` becomes `-`, any
 * other character `_`; two cases that would meet on one path are refused (renderKcidb), never merged.
 */
export function kcidbPath(c: Pick<MatrixCase, 'id' | 'template'>): string {
  const node = (s: string): string => s.replace(/=/g, '-').replace(/[^A-Za-z0-9_-]/g, '_');
  const params = c.id === c.template ? [] : caseLabel(c).split(',').map(node);
  return [KCIDB_ROOT_PATH, ...c.template.split('.').map(node), ...params].join('.');
}

/** Cut a log excerpt to the schema's limit, saying so at its end. */
function excerpt(lines: readonly string[]): string | undefined {
  const text = lines.join('\n');
  if (!text) return undefined;
  if (text.length <= LOG_EXCERPT_MAX) return text;
  const tail = '\n… (cut to the KCIDB limit)';
  return text.slice(0, LOG_EXCERPT_MAX - tail.length) + tail;
}

interface Origin { checkout: string; start: string }

/** The checkouts of one family section: its runs and its recorded directories, by source. */
function checkoutsOf(f: FamilySection): { checkouts: KcidbCheckout[]; bySource: Map<string, Origin> } {
  const checkouts: KcidbCheckout[] = [];
  const bySource = new Map<string, Origin>();
  for (const r of f.runs) {
    const cid = id(`run-${short([r.generated, r.host, r.backends.map((b) => [b.name, b.version ?? ''])])}`);
    checkouts.push({
      id: cid, origin: KCIDB_ORIGIN, start_time: r.generated,
      comment: `svmconf run of ${r.generated} on ${r.machine}`,
      misc: { source: r.source, machine: r.machine, host: r.host, family: f.slug, backends: r.backends },
    });
    bySource.set(r.source, { checkout: cid, start: r.generated });
  }
  for (const rec of f.recorded) {
    const p = rec.provenance;
    const cid = id(`recorded-${short([f.slug, rec.cpu, p.backend.name, p.generated])}`);
    checkouts.push({
      id: cid, origin: KCIDB_ORIGIN, start_time: p.generated,
      comment: `hardware recording of ${p.backend.name} on ${p.cpu.name}, filed ${p.recorded}`,
      misc: { source: rec.dir, family: f.slug, provenance: p },
    });
    bySource.set(rec.dir, { checkout: cid, start: p.generated });
  }
  return { checkouts, bySource };
}

function buildOf(f: FamilySection, col: MatrixColumn, origin: Origin): KcidbBuild {
  return {
    id: `${origin.checkout}/${col.backend}`, checkout_id: origin.checkout, origin: KCIDB_ORIGIN, start_time: origin.start,
    // the test kernels are x86-64 images (docs/architecture.md "Stages and data flow")
    architecture: 'x86_64',
    comment: `${col.key}${col.version ? ` (${col.version})` : ''}`,
    misc: {
      column: col.key, backend: col.backend, kind: col.kind, machine: col.machine, family: f.slug, family_name: f.name,
      ...(col.version ? { version: col.version } : {}), ...(col.cpu ? { cpu: col.cpu } : {}),
    },
  };
}

/**
 * The matrix as KCIDB reports: the first holds the checkouts, then one per build with its tests.
 * kcidb-submit sends each report of its input as one message, and a full run as one object (15 MB
 * for 13 columns and 1060 cases) would pass the message queue's 10 MB limit; a build's report stays
 * far below it, and KCIDB joins objects of separate submissions by their ids.
 */
export function renderKcidb(m: Matrix, registry: readonly Deviation[] = []): KcidbReport[] {
  const findingOf = new Map(registry.flatMap((d) => (d.finding ? [[d.id, d.finding] as const] : [])));
  const version = (): KcidbReport['version'] => ({ ...KCIDB_SCHEMA });
  const head: KcidbReport = { version: version(), checkouts: [] };
  const reports: KcidbReport[] = [head];
  for (const f of m.families) {
    const { checkouts, bySource } = checkoutsOf(f);
    head.checkouts!.push(...checkouts);
    for (const col of f.columns) {
      const builds = new Map<string, { build: KcidbBuild; tests: KcidbTest[] }>();
      const buildFor = (source: string): { build: KcidbBuild; tests: KcidbTest[] } => {
        const known = builds.get(source);
        if (known) return known;
        const origin = bySource.get(source);
        if (!origin) throw new KcidbError(`column ${col.key} of ${f.slug}: its source ${source} is neither a run nor a recording of the section`);
        const b = { build: buildOf(f, col, origin), tests: [] };
        builds.set(source, b);
        return b;
      };
      for (const s of col.sources) buildFor(s);
      const paths = new Map<string, string>();
      for (const c of f.cases) {
        const cell = c.cells[col.key];
        const kind: CellKind = cell?.kind ?? 'missing';
        const { build, tests } = buildFor(cell?.source ?? col.sources[0]!);
        const path = kcidbPath(c);
        const other = paths.get(`${build.id} ${path}`);
        if (other !== undefined) throw new KcidbError(`cases ${other} and ${c.id} would both be the KCIDB path ${path}`);
        paths.set(`${build.id} ${path}`, c.id);
        const deviations = cell?.deviations ?? [];
        const findings = [...new Set(deviations.flatMap((d) => findingOf.get(d) ?? []))];
        const detail = !cell ? ['no result in this column']
          : kind === 'diverge' || kind === 'known' ? [...(deviations.length ? [`known deviation ${deviations.join(', ')} (expected/deviations.yaml)`] : []), ...columnDiffLines(c, col.key)]
          : cell.status !== 'OK' ? [`${cell.status}${cell.reason ? `: ${cell.reason}` : ''}`] : [];
        const log = excerpt(detail);
        tests.push({
          id: `${build.id}/${c.id}`, build_id: build.id, origin: KCIDB_ORIGIN, path, status: KCIDB_STATUS[kind],
          start_time: build.start_time,
          comment: `${c.id} on ${col.key}: ${!cell ? 'no result' : cell.status === 'OK' ? `OK ${cell.text}` : cell.status}; case verdict ${c.verdictText}`,
          ...(log ? { log_excerpt: log } : {}),
          environment: { comment: col.machine },
          misc: {
            case: c.id, family: f.slug, column: col.key, cell: kind, verdict: c.verdict,
            ...(cell ? { status: cell.status, text: cell.text } : {}),
            ...(cell?.digest ? { digest: cell.digest } : {}),
            ...(deviations.length ? { known_deviations: deviations } : {}),
            ...(findings.length ? { findings } : {}),
            ...(cell?.unstable ? { unstable: cell.unstable } : {}),
          },
        });
      }
      for (const { build, tests } of builds.values()) reports.push({ version: version(), builds: [build], tests });
    }
  }
  return reports;
}

/** The reports as kcidb-submit and kcidb-validate read them: one JSON value a line. */
export const serializeKcidb = (reports: readonly KcidbReport[]): string => reports.map((r) => `${JSON.stringify(r)}\n`).join('');

/** Write the reports to `path` atomically (report/results.ts writeFileAtomic); returns the path. */
export async function writeKcidb(path: string, m: Matrix, registry: readonly Deviation[] = []): Promise<string> {
  await writeFileAtomic(path, serializeKcidb(renderKcidb(m, registry)));
  return path;
}
