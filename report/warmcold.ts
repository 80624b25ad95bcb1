// Warm/cold comparison (docs/model.md "Warm and cold pages": pages touched for the first time and warm
// pages must give identical outcomes). Cases whose ids differ only in `temp=cold` vs `temp=warm`
// run the same event with its pages untouched or touched first; a hypervisor that faults guest pages
// in on first touch (KVM; the model's virtual L0) must not let that show. So on every backend that
// ran both, the two records must agree on the defined bits (the mask the cold result carries, else
// the warm one's), and the two statuses must be equal. A pair that disagrees is a finding of its
// own, separate from the divergences between backends: results.json `warmCold`, a section of the
// table and of matrix.md.

import type { CaseResult, Results, WarmColdSummary } from '../core/types.ts';
import { compareCase, formatDiff, maskFromResults } from './compare.ts';

export type { WarmColdDisagreement, WarmColdSummary } from '../core/types.ts';

export const TEMP_PARAM = 'temp';

/** The id of the twin of a `temp=cold` case: the same id with `temp=warm`. */
export function warmTwin(id: string): string | undefined {
  const m = /^(.*[/,])temp=cold(,.*)?$/.exec(id);
  return m ? `${m[1]}temp=warm${m[2] ?? ''}` : undefined;
}

type Layout = Parameters<typeof compareCase>[1];

/** Why the warm result differs from the cold one (status or defined record bits), or undefined. */
function differs(cold: CaseResult, warm: CaseResult, layout: Layout, id: string, template: string): string | undefined {
  if (cold.status !== warm.status) return `status cold ${cold.status}, warm ${warm.status}`;
  if (cold.status !== 'OK') return undefined;
  // the cold result's mask first (it is the reference), else the warm one's
  const results: Record<string, CaseResult> = { cold, warm };
  if (cold.mask === undefined && warm.mask !== undefined) results.cold = { ...cold, mask: warm.mask };
  const cmp = compareCase({ id, template, params: {}, results }, layout, {
    preference: ['cold'], backends: ['cold', 'warm'], definedMask: maskFromResults,
  });
  if (cmp.verdict !== 'diverge') return undefined;
  return cmp.diffs.filter((d) => d.strict.length > 0).map(formatDiff).join('; ');
}

/** Every cold/warm pair of `results`, compared per backend (record layouts from results.layouts). */
export function compareWarmCold(results: Pick<Results, 'cases' | 'layouts'>): WarmColdSummary {
  const byId = new Map(results.cases.map((c) => [c.id, c] as const));
  const out: WarmColdSummary = { pairs: 0, compared: 0, disagreements: [] };
  for (const c of results.cases) {
    if (c.params[TEMP_PARAM] !== 'cold') continue;
    const twinId = warmTwin(c.id);
    const twin = twinId ? byId.get(twinId) : undefined;
    if (!twin) continue;
    out.pairs++;
    for (const [backend, cold] of Object.entries(c.results)) {
      const warm = twin.results[backend];
      if (!warm) continue;
      // a backend that did not run a case by design (SKIP, UNSUPPORTED) has nothing to compare
      if (cold.status === 'UNSUPPORTED' && warm.status === 'UNSUPPORTED') continue;
      out.compared++;
      const why = differs(cold, warm, results.layouts[c.template], c.id, c.template);
      if (why !== undefined) out.disagreements.push({ cold: c.id, warm: twin.id, backend, why });
    }
  }
  return out;
}

/** Plain-text lines of the section (table and matrix.md share them). */
export function warmColdLines(s: WarmColdSummary): string[] {
  const head = `Warm/cold disagreements (${s.disagreements.length}; ${s.pairs} pair(s), ${s.compared} comparison(s))`;
  if (s.disagreements.length === 0) return [head, '  none'];
  return [head, ...s.disagreements.map((d) => `  ${d.cold} vs temp=warm on ${d.backend}: ${d.why}`)];
}
