// The warm/cold comparison (report/warmcold.ts) on made-up results: twins found by id, compared
// per backend under the mask, disagreements named; the table and matrix.md show the section and
// results.json keeps it through validation.

import assert from 'node:assert/strict';
import type { CaseOutcome, RecordField, Results } from '../core/types.ts';
import { compareWarmCold, warmColdLines, warmTwin } from '../report/warmcold.ts';
import { parseResults, serializeResults } from '../report/results.ts';
import { renderTable } from '../report/table.ts';
import { renderMarkdown } from '../report/markdown.ts';

const FIELDS: RecordField[] = [
  { name: 'frame_rip', type: 'u64', offset: 0, size: 8, decode: 'offset', doc: 'pushed RIP' },
  { name: 'hits', type: 'u64', offset: 8, size: 8, decode: 'count', doc: 'handler runs' },
] as RecordField[];

const rec = (rip: number, hits: number): string => {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(rip), 0);
  b.writeBigUInt64LE(BigInt(hits), 8);
  return b.toString('hex');
};

function outcome(temp: string, results: CaseOutcome['results'], insn = 'int3'): CaseOutcome {
  return { id: `t.x/insn=${insn},temp=${temp},nrips=on`, template: 't.x', params: { insn, temp, nrips: 'on' }, results };
}

function results(cases: CaseOutcome[]): Results {
  return {
    schema: 'svmconf-results/1', generated: '2026-01-01T00:00:00.000Z',
    host: { vendor: 'AuthenticAMD', family: 0x19, model: 0x11, stepping: 1, modelName: 'test', kernel: '6.1.0' },
    backends: [], layouts: { 't.x': FIELDS }, cases,
  };
}

describe('warm/cold comparison (report/warmcold.ts)', () => {
  it('finds the warm twin of a cold case id, whatever the position of temp', () => {
    assert.equal(warmTwin('a.b/x=1,temp=cold,y=2'), 'a.b/x=1,temp=warm,y=2');
    assert.equal(warmTwin('a.b/temp=cold'), 'a.b/temp=warm');
    assert.equal(warmTwin('a.b/temp=cold,y=2'), 'a.b/temp=warm,y=2');
    assert.equal(warmTwin('a.b/attemp=cold'), undefined);
    assert.equal(warmTwin('a.b/temp=warm'), undefined);
  });

  it('equal twins agree; a record or status difference is a disagreement on that backend only', () => {
    const r = results([
      outcome('cold', { model: { status: 'OK', record: rec(0, 1) }, kvm: { status: 'OK', record: rec(0, 2) } }),
      outcome('warm', { model: { status: 'OK', record: rec(0, 1) }, kvm: { status: 'OK', record: rec(0, 1) } }),
      outcome('cold', { model: { status: 'OK', record: rec(0, 1) }, kvm: { status: 'CRASH', reason: 'x' } }, 'intn'),
      outcome('warm', { model: { status: 'OK', record: rec(0, 1) }, kvm: { status: 'OK', record: rec(0, 1) } }, 'intn'),
    ]);
    const s = compareWarmCold(r);
    assert.equal(s.pairs, 2);
    assert.equal(s.compared, 4);
    assert.deepEqual(s.disagreements.map((d) => [d.cold, d.backend]), [
      ['t.x/insn=int3,temp=cold,nrips=on', 'kvm'],
      ['t.x/insn=intn,temp=cold,nrips=on', 'kvm'],
    ]);
    assert.match(s.disagreements[0]!.why, /hits/);
    assert.match(s.disagreements[1]!.why, /status cold CRASH, warm OK/);
  });

  it('bits outside the mask the cold result carries do not count', () => {
    const mask = `${'00'.repeat(8)}${'ff'.repeat(8)}`; // frame_rip undefined
    const r = results([
      outcome('cold', { model: { status: 'OK', record: rec(5, 1), mask } }),
      outcome('warm', { model: { status: 'OK', record: rec(7, 1), mask } }),
    ]);
    assert.deepEqual(compareWarmCold(r).disagreements, []);
  });

  it('results.json keeps the section through validation; the table and matrix.md show it', () => {
    const r = results([
      outcome('cold', { model: { status: 'OK', record: rec(0, 2) } }),
      outcome('warm', { model: { status: 'OK', record: rec(0, 1) } }),
    ]);
    r.warmCold = compareWarmCold(r);
    // a results file lists the backends its results come from
    const feature = { present: true, absent: true, reason: 'test' };
    r.backends = [{ name: 'model', kind: 'model', available: true, reason: '', features: { svm: feature, npt: feature, nrips: feature } }];
    const back = parseResults(serializeResults(r));
    assert.deepEqual(back.warmCold, r.warmCold);
    assert.match(warmColdLines(r.warmCold).join('\n'), /Warm\/cold disagreements \(1; 1 pair/);
    assert.match(renderTable(r), /Warm\/cold disagreements \(1/);
    assert.match(renderMarkdown(r), /## Warm\/cold disagreements \(1\)/);
    assert.throws(() => parseResults(JSON.stringify({ ...r, warmCold: { pairs: 1, compared: 1, disagreements: [{ cold: 1 }] } })), /warmCold/);
  });
});
