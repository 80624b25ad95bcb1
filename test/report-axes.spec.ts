// Counts per matrix axis (report/axes.ts): `svmconf list` and the matrix report's per-axis table.
import assert from 'node:assert/strict';
import { axisCounts, axisVerdicts, formatAxisCounts } from '../report/axes.ts';
import type { Verdict } from '../report/compare.ts';

describe('report/axes: cases and verdicts per matrix axis', () => {
  const cases: Array<{ template: string; params: Record<string, string>; verdict: Verdict }> = [
    { template: 'a', params: { owner: 'l1', temp: 'cold' }, verdict: 'agree' },
    { template: 'a', params: { owner: 'l2', temp: 'cold' }, verdict: 'diverge' },
    { template: 'b', params: { temp: 'warm' }, verdict: 'agree' },
    { template: 'c', params: {}, verdict: 'single' },
  ];

  it('counts every parameter value over all templates, in first-seen order', () => {
    const counts = axisCounts(cases);
    assert.deepEqual([...counts.keys()], ['owner', 'temp']);
    assert.deepEqual([...counts.get('temp')!], [['cold', 2], ['warm', 1]]);
    assert.deepEqual(formatAxisCounts(counts), ['  owner: l1:1 l2:1', '  temp: cold:2 warm:1']);
  });

  it('counts verdicts per template, axis and value; a case without parameters adds no row', () => {
    const rows = axisVerdicts(cases);
    assert.deepEqual(rows.map((r) => `${r.template} ${r.axis}=${r.value}`), ['a owner=l1', 'a temp=cold', 'a owner=l2', 'b temp=warm']);
    const cold = rows.find((r) => r.template === 'a' && r.value === 'cold')!;
    assert.equal(cold.verdicts.agree, 1);
    assert.equal(cold.verdicts.diverge, 1);
    assert.equal(cold.verdicts.known, 0);
  });
});
