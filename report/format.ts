// Presentation helpers shared by the terminal table and the Markdown matrix.

import type { BackendInfo, CaseOutcome, CaseResult, Feature, HostInfo, Status } from '../core/types.ts';
import { FEATURES } from '../core/types.ts';
import { referenceFor, type CaseComparison, type Verdict } from './compare.ts';
import { describeCrash } from './decode.ts';

/** The part of a case id after its template id (`nrips=1,vec=3`), or `(default)` when there is none. */
export function caseLabel(c: Pick<CaseOutcome, 'id' | 'template'>): string {
  if (c.id === c.template) return '(default)';
  if (c.id.startsWith(`${c.template}/`)) return c.id.slice(c.template.length + 1);
  return c.id;
}

/** Cases grouped by template, groups in order of first appearance, cases in run order. */
export function groupByTemplate<T extends { template: string }>(cases: readonly T[]): Array<{ template: string; cases: T[] }> {
  const groups = new Map<string, T[]>();
  for (const c of cases) {
    const g = groups.get(c.template);
    if (g) g.push(c);
    else groups.set(c.template, [c]);
  }
  return [...groups].map(([template, cs]) => ({ template, cases: cs }));
}

/** Short status names for narrow cells. */
export const SHORT_STATUS: Readonly<Record<Status, string>> = {
  OK: 'OK', SKIP: 'SKIP', CRASH: 'CRASH', TIMEOUT: 'TIMEOUT', ERROR: 'ERROR', UNSUPPORTED: 'UNSUP',
};

export type CellKind = 'reference' | 'agree' | 'informational' | 'known' | 'diverge' | 'single' | 'notrun' | 'problem' | 'missing';

export interface Cell {
  kind: CellKind;
  /** Compact text: a digest for the reference, `=`, `≈`, `~<digest>` (known deviation), `≠<digest>`, a status, `—`. */
  text: string;
}

/** What one backend's cell shows for a case. */
export function cellFor(cmp: CaseComparison, result: CaseResult | undefined, backend: string): Cell {
  if (!result) return { kind: 'missing', text: '—' };
  if (result.status !== 'OK') {
    const problem = result.status === 'CRASH' || result.status === 'TIMEOUT' || result.status === 'ERROR';
    return { kind: problem ? 'problem' : 'notrun', text: SHORT_STATUS[result.status] };
  }
  const d = cmp.digests[backend] ?? '';
  if (cmp.verdict === 'single') return { kind: 'single', text: d };
  if (referenceFor(cmp, backend) === backend) return { kind: 'reference', text: d };
  if (cmp.diverging.includes(backend)) return { kind: 'diverge', text: `≠${d}` };
  if (cmp.known.includes(backend)) return { kind: 'known', text: `~${d}` };
  const informational = cmp.diffs.some((x) => x.differing.includes(backend));
  return informational ? { kind: 'informational', text: '≈' } : { kind: 'agree', text: '=' };
}

/**
 * Verdict text; `agree*` when only informational (undefined-bit) differences exist;
 * `known deviation (<ids>)` when every difference is explained by the registry.
 */
export function verdictText(cmp: CaseComparison): string {
  if (cmp.verdict === 'known') return `known deviation (${[...new Set(cmp.deviations.map((m) => m.id))].join(', ')})`;
  if (cmp.verdict === 'open') return `open (${cmp.open ?? 'the manual leaves the outcome open'})`;
  return cmp.verdict === 'agree' && cmp.diffs.length > 0 ? 'agree*' : cmp.verdict;
}

export const VERDICT_MEANING: Readonly<Record<Verdict, string>> = {
  agree: 'two or more backends returned OK and their records are identical on every defined bit',
  open: 'the manual leaves this outcome open (the model says why): every record is shown, no bit is compared, it is never a divergence',
  known: 'two or more backends returned OK and every difference in a defined bit is a known deviation: an entry of the deviation registry covers the backend, its version, the case, the field and the value',
  diverge: 'two or more backends returned OK and a record differs from the reference in a defined bit that no registry entry explains',
  single: 'exactly one backend returned OK: nothing to compare with',
  none: 'no backend returned OK',
};

export const STATUS_MEANING: Readonly<Record<Status, string>> = {
  OK: 'the kernel emitted a valid record for the case',
  SKIP: 'the kernel decided not to run the case (its reason is shown)',
  CRASH: 'unexpected exception in L1, triple fault, or an emulator/VMM failure while the case ran',
  TIMEOUT: 'no progress within the time limit',
  ERROR: 'no valid record: bad CRC, truncated line, missing END, unexpected case id…',
  UNSUPPORTED: 'the backend cannot provide what the case requires (reason says what)',
};

/**
 * `svm show+hide, npt show+hide, nrips show only (…)`: every feature, comma-separated; features in
 * the same state for the same reason are named together (`svm/npt/nrips hide only (…)`).
 */
export function featureSummary(b: BackendInfo): string {
  const groups = new Map<string, Feature[]>();
  for (const f of FEATURES) {
    const state = featureState(b, f);
    groups.set(state, [...(groups.get(state) ?? []), f]);
  }
  return [...groups].map(([state, fs]) => `${fs.join('/')} ${state}`).join(', ');
}

/**
 * What a backend can do with a feature: `show+hide` (both), `show only (reason)`, `hide only (reason)`,
 * `— (reason)` (neither), `?` (not reported).
 */
export function featureState(b: BackendInfo, f: Feature): string {
  const x = b.features?.[f];
  if (!x) return '?';
  if (x.present && x.absent) return 'show+hide';
  const why = x.reason ? ` (${x.reason})` : '';
  if (x.present) return `show only${why}`;
  if (x.absent) return `hide only${why}`;
  return `—${why}`;
}

export function hostLine(h: HostInfo): string {
  const fms = `family ${h.family.toString(16)}h model ${h.model.toString(16)}h stepping ${h.stepping}`;
  return `${h.modelName || h.vendor} (${h.vendor}, ${fms}), kernel ${h.kernel}`;
}

/** Why a result is not OK, for humans: its reason, plus the decoded crash record for CRASH. */
export function resultDetail(r: CaseResult): string {
  const parts: string[] = [];
  if (r.reason) parts.push(r.reason);
  if (r.status === 'CRASH' && r.record) parts.push(describeCrash(r.record));
  return parts.join('; ');
}
