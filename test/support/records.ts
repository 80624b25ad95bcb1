// The OK records of a scheduled run, for specs that compare one backend's records with the model's
// (test/kvm-tcg.spec.ts, test/kvm-tcg-peer.spec.ts): every case must have an OK result there.

import assert from 'node:assert/strict';
import type { Case } from '../../core/types.ts';
import type { ScheduleResults } from '../../runner/schedule.ts';

/** Case id → record of `backend`; fails the spec on a missing or non-OK result, naming the case. */
export function okRecords(results: ScheduleResults, backend: string, cases: Case[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of cases) {
    const r = results.get(c.id)?.[backend];
    assert.ok(r, `${c.id}: no result on ${backend}`);
    assert.equal(r.status, 'OK', `${c.id} on ${backend}: ${r.status} ${'detail' in r ? String((r as { detail?: string }).detail) : ''}`);
    out.set(c.id, (r as { record: string }).record);
  }
  return out;
}
