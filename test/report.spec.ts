// The report stage: comparison verdicts, summary, terminal table, Markdown matrix, results.json.
// Event-info expectations are hand-derived from docs/svm-rules.md ("EVENTINJ and EXITINTINFO
// layout": V bit 31, TYPE 10:8, vector 7:0; "EXITINTINFO types of the interrupt instructions": INT3
// is TYPE 3 in EXITINTINFO, `int $3` TYPE 4).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  BackendInfo, Case, CaseOutcome, CaseResult, FieldDecode, FieldType, RecordField, Results, Template,
} from '../core/types.ts';
import { compareCase, compareResults, digest, formatDiff, RECORD_FIELD, SIZE_FIELD } from '../report/compare.ts';
import { renderMarkdown, writeMarkdown } from '../report/markdown.ts';
import {
  buildResults, parseResults, readResults, ResultsFormatError, serializeResults, writeFileAtomic, writeFileAtomicSync,
  writeResults,
} from '../report/results.ts';
import { renderTable, useColor } from '../report/table.ts';

const SIZES: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

function layout(spec: Array<[string, FieldType, FieldDecode]>): RecordField[] {
  let offset = 0;
  return spec.map(([name, type, decode]) => {
    const f: RecordField = { name, type, offset, size: SIZES[type], decode, doc: `${name} doc` };
    offset += f.size;
    return f;
  });
}

/** A record from field values, little-endian, written independently of report/decode.ts. */
function record(l: readonly RecordField[], values: Record<string, bigint>): string {
  return l.map((f) => {
    let v = values[f.name] ?? 0n;
    let s = '';
    for (let i = 0; i < f.size; i++) {
      s += (v & 0xffn).toString(16).padStart(2, '0');
      v >>= 8n;
    }
    return s;
  }).join('');
}

const TID = 'svm.inject.softint';
const L = layout([
  ['exit_code', 'u64', 'exitcode'],
  ['exit_int_info', 'u64', 'eventinfo'],
  ['next_rip', 'u64', 'offset'],
  ['frame_rflags', 'u64', 'rflags'],
]);
// #PF intercepted while delivering INT3: exit 0x4E, EXITINTINFO V=1 TYPE=3 VEC=3 (SF: INT3 is TYPE 3).
const REC_EXCEPTION = record(L, { exit_code: 0x4en, exit_int_info: 0x8000_0303n, frame_rflags: 0x246n });
// The same, but a backend that reports TYPE 4 (software interrupt) for the INT3: a divergence.
const REC_SOFTINT = record(L, { exit_code: 0x4en, exit_int_info: 0x8000_0403n, frame_rflags: 0x246n });
// Same as REC_EXCEPTION but next_rip = 5 (SF: next_rip is 0 on exits taken while vectoring).
const REC_NEXTRIP = record(L, { exit_code: 0x4en, exit_int_info: 0x8000_0303n, next_rip: 5n, frame_rflags: 0x246n });

const ok = (rec: string): CaseResult => ({ status: 'OK', record: rec });

function outcome(id: string, results: Record<string, CaseResult>): CaseOutcome {
  return { id: `${TID}/${id}`, template: TID, params: { id }, results };
}

const FEATURES_ALL = {
  svm: { present: true, absent: true, reason: '' },
  npt: { present: true, absent: true, reason: '' },
  nrips: { present: true, absent: false, reason: 'the host CPU has NRIPS and KVM cannot hide it' },
};

function backend(name: string, available = true, reason = ''): BackendInfo {
  return { name, kind: name === 'kvm' ? 'hardware' : name.startsWith('model') ? 'model' : 'emulator', available, reason, features: FEATURES_ALL };
}

function results(cases: CaseOutcome[], backends = ['qemu-tcg', 'kvm']): Results {
  return {
    schema: 'svmconf-results/1',
    generated: '2025-01-02T03:04:05.000Z',
    host: { vendor: 'AuthenticAMD', family: 0x19, model: 0x21, stepping: 0, modelName: 'AMD Ryzen 9 5950X', kernel: '6.8.0' },
    backends: backends.map((b) => backend(b)),
    layouts: { [TID]: L },
    cases,
  };
}

describe('compare: verdicts', () => {
  it('agree: two OK backends with identical bytes', () => {
    const c = compareCase(outcome('a', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_EXCEPTION) }), L);
    assert.equal(c.verdict, 'agree');
    assert.equal(c.reference, 'qemu-tcg');
    assert.deepEqual(c.agreeing, ['qemu-tcg', 'kvm']);
    assert.deepEqual(c.diffs, []);
  });

  it('diverge: lists the differing field with decoded values', () => {
    const c = compareCase(outcome('b', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_SOFTINT) }), L);
    assert.equal(c.verdict, 'diverge');
    assert.deepEqual(c.diverging, ['kvm']);
    assert.deepEqual(c.diffs.map((d) => d.field), ['exit_int_info']);
    const d = c.diffs[0];
    assert.ok(d);
    assert.equal(d.informational, false);
    assert.equal(formatDiff(d), 'exit_int_info: qemu-tcg V=1 TYPE=EXCEPTION VEC=#BP(3), kvm V=1 TYPE=SOFT_INT VEC=0x3');
  });

  it('single: one OK backend, nothing to compare', () => {
    const c = compareCase(outcome('c', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: { status: 'CRASH', reason: 'triple fault' } }), L);
    assert.equal(c.verdict, 'single');
    assert.equal(c.reference, 'qemu-tcg');
  });

  it('none: no OK backend', () => {
    const c = compareCase(outcome('d', { 'qemu-tcg': { status: 'SKIP', reason: 'x' }, kvm: { status: 'UNSUPPORTED', reason: 'y' } }), L);
    assert.equal(c.verdict, 'none');
    assert.equal(c.reference, undefined);
  });

  it('reference: preference order first, then column order', () => {
    const o = outcome('e', { kvm: ok(REC_SOFTINT), model: ok(REC_EXCEPTION), 'qemu-tcg': ok(REC_EXCEPTION) });
    const withModel = compareCase(o, L, { backends: ['qemu-tcg', 'kvm', 'model'] });
    assert.equal(withModel.reference, 'model');
    assert.deepEqual(withModel.diverging, ['kvm']);
    const byColumns = compareCase(o, L, { backends: ['kvm', 'qemu-tcg', 'model'], preference: [] });
    assert.equal(byColumns.reference, 'kvm');
    assert.deepEqual(byColumns.diverging, ['qemu-tcg', 'model']);
    // The diff lists every OK backend, the reference first.
    assert.deepEqual(byColumns.diffs[0]?.values.map((v) => v.backend), ['kvm', 'qemu-tcg', 'model']);
  });

  it('defined-bits masks: differences outside the mask are informational', () => {
    const o = outcome('f', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_NEXTRIP) });
    assert.equal(compareCase(o, L).verdict, 'diverge'); // default: every bit is defined
    const masked = compareCase(o, L, { definedMask: ({ field }) => (field.name === 'next_rip' ? 0n : undefined) });
    assert.equal(masked.verdict, 'agree');
    assert.deepEqual(masked.diverging, []);
    assert.equal(masked.diffs.length, 1);
    assert.equal(masked.diffs[0]?.informational, true);
    assert.match(formatDiff(masked.diffs[0]!), /^next_rip \(informational.*qemu-tcg \+0x0, kvm \+0x5$/);
    // A mask that keeps the differing bit (bit 0 of 5) still diverges.
    const partly = compareCase(o, L, { definedMask: ({ field }) => (field.name === 'next_rip' ? 1n : undefined) });
    assert.equal(partly.verdict, 'diverge');
  });

  it('records of different length diverge on (size); non-hex records compare raw', () => {
    const short = compareCase(outcome('g', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_EXCEPTION.slice(0, 16)) }), L);
    assert.equal(short.verdict, 'diverge');
    assert.equal(short.diffs[0]?.field, SIZE_FIELD);
    assert.equal(short.diffs[0]?.values.map((v) => v.text).join(','), '32 bytes,8 bytes');
    const garbage = compareCase(outcome('h', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok('xyz') }), L);
    assert.equal(garbage.verdict, 'diverge');
    assert.equal(garbage.diffs[0]?.field, RECORD_FIELD);
    const noLayout = compareCase(outcome('i', { 'qemu-tcg': ok('00'), kvm: ok('01') }), undefined);
    assert.equal(noLayout.verdict, 'diverge');
    assert.equal(noLayout.diffs[0]?.field, RECORD_FIELD);
  });

  it('digest: first 6 hex digits of the CRC-32 (check value of "123456789" is cbf43926)', () => {
    assert.equal(digest('123456789'), 'cbf439');
  });
});

describe('compare: summary', () => {
  it('counts statuses per backend, verdicts, and separates problems from cases not run by design', () => {
    const r = results([
      outcome('1', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_EXCEPTION) }),
      outcome('2', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_SOFTINT) }),
      outcome('3', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: { status: 'TIMEOUT', reason: 'no output for 10 s' } }),
      outcome('4', { 'qemu-tcg': { status: 'ERROR', reason: 'bad CRC' }, kvm: { status: 'UNSUPPORTED', reason: 'no nested' } }),
      outcome('5', { 'qemu-tcg': { status: 'SKIP', reason: 'npt absent' } }),
    ]);
    const { summary } = compareResults(r);
    assert.deepEqual(summary.verdicts, { agree: 1, open: 0, known: 0, diverge: 1, single: 1, none: 2 });
    assert.deepEqual(summary.backends['qemu-tcg'], { OK: 3, SKIP: 1, CRASH: 0, TIMEOUT: 0, ERROR: 1, UNSUPPORTED: 0, missing: 0 });
    assert.deepEqual(summary.backends.kvm, { OK: 2, SKIP: 0, CRASH: 0, TIMEOUT: 1, ERROR: 0, UNSUPPORTED: 1, missing: 1 });
    assert.deepEqual(summary.problems.map((p) => `${p.case.slice(TID.length + 1)} ${p.backend} ${p.status}`), ['3 kvm TIMEOUT', '4 qemu-tcg ERROR']);
    assert.equal(summary.notRun, 2);
    assert.equal(summary.clean, false);
  });
});

describe('report: terminal table', () => {
  const r = results([
    outcome('same', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_EXCEPTION) }),
    outcome('differ', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_SOFTINT) }),
    outcome('crash', {
      'qemu-tcg': ok(REC_EXCEPTION),
      // CRASH record: #GP (13), error code 0x10, at entry + 0x1c (protocol.md "The crash record").
      kvm: { status: 'CRASH', reason: 'catch-all IDT', record: '0d' + '00'.repeat(7) + '10' + '00'.repeat(7) + '1c' + '00'.repeat(7) + '08' + '00'.repeat(7) + '4600010000000000' + '00'.repeat(8) },
    }),
  ]);

  it('with verbose, shows one line per case with =, ≠ and statuses, then divergences, backends, totals', () => {
    const text = renderTable(r, { verbose: true });
    const lines = text.split('\n');
    const row = (label: string): string => lines.find((l) => l.startsWith(`  ${label} `)) ?? '';
    assert.match(row('same'), new RegExp(`^  same\\s+${digest(REC_EXCEPTION)}\\s+=\\s+agree$`));
    assert.match(row('differ'), new RegExp(`^  differ\\s+${digest(REC_EXCEPTION)}\\s+≠${digest(REC_SOFTINT)}\\s+diverge$`));
    assert.match(row('crash'), /^ {2}crash\s+[0-9a-f]{6}\s+CRASH\s+single$/);
    assert.ok(lines.includes(`  ${TID}/differ  diverge  (reference qemu-tcg; differs: kvm)`));
    assert.ok(lines.includes('    exit_int_info: qemu-tcg V=1 TYPE=EXCEPTION VEC=#BP(3), kvm V=1 TYPE=SOFT_INT VEC=0x3'));
    assert.ok(lines.some((l) => /^ {2}kvm\s+available\s+svm\/npt show\+hide, nrips show only \(the host CPU has NRIPS/.test(l)));
    assert.ok(lines.some((l) => l.includes('verdicts: agree 1, diverge 1, single 1, none 0')));
    assert.ok(lines.some((l) => l.includes(`CRASH   kvm      ${TID}/crash: catch-all IDT; #GP (13) err=0x10 rip=+0x1c`)));
    assert.ok(text.indexOf('Divergences') < text.indexOf('Backends') && text.indexOf('Backends') < text.indexOf('Totals'));
    assert.ok(!text.includes('\x1b['), 'no colour unless asked');
  });

  it('without verbose, prints the summary and the differences, no line per case', () => {
    const text = renderTable(r);
    const lines = text.split('\n');
    for (const label of ['same', 'differ', 'crash']) assert.ok(!lines.some((l) => l.startsWith(`  ${label} `)), `no case line for ${label}`);
    assert.ok(!text.includes('cells: <digest>'), 'no legend of the cells without the cells');
    // the headline first: each column on its own; kvm agrees in `same`, diverges in `differ`, crashed in `crash`
    assert.ok(text.indexOf('Conformance per implementation') < text.indexOf('Divergences'));
    const kvm = lines.findIndex((l) => /^ {2}kvm\s+1 agree · 0 known · 0 open · 1 diverge · 0 not run · 1 problems {2}← diverges$/.test(l));
    assert.ok(kvm > 0, text);
    assert.equal(lines[kvm + 1]!.trim(), `diverges: ${TID} 1 (id differ:1)`, 'where, per template and parameter value');
    assert.equal(lines[kvm + 2]!.trim(), `problems: ${TID} 1 (id crash:1)`);
    // the differences are still there, decoded, and so are the totals and the problem
    assert.ok(lines.includes(`  ${TID}/differ  diverge  (reference qemu-tcg; differs: kvm)`));
    assert.ok(lines.includes('    exit_int_info: qemu-tcg V=1 TYPE=EXCEPTION VEC=#BP(3), kvm V=1 TYPE=SOFT_INT VEC=0x3'));
    assert.ok(lines.some((l) => l.includes(`CRASH   kvm      ${TID}/crash: catch-all IDT`)));
    assert.ok(text.indexOf('Divergences') < text.indexOf('Backends') && text.indexOf('Backends') < text.indexOf('Totals'));
  });

  it('colours only when asked, and asks only for a TTY without NO_COLOR', () => {
    assert.ok(renderTable(r, { color: true }).includes('\x1b[31m'));
    assert.equal(useColor({ isTTY: true }, {}), true);
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '' }), true); // no-color.org: only a non-empty value counts
    assert.equal(useColor({ isTTY: false }, {}), false);
    assert.equal(useColor({}, {}), false);
  });

  it('stays one line per case at 150 cases', () => {
    const many = results(Array.from({ length: 150 }, (_, i) => outcome(`nrips=${i % 2},vec=${i}`, { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(i === 77 ? REC_SOFTINT : REC_EXCEPTION) })));
    const lines = renderTable(many, { width: 100, verbose: true }).split('\n');
    for (let i = 0; i < 150; i++) {
      const label = `  nrips=${i % 2},vec=${i} `;
      assert.equal(lines.filter((l) => l.startsWith(label)).length, 1, label);
    }
    const matrixLines = lines.filter((l) => l.startsWith('  nrips='));
    assert.ok(matrixLines.every((l) => l.length <= 100), 'fits the width');
  });
});

describe('report: markdown', () => {
  const r = results([
    outcome('same', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_EXCEPTION) }),
    outcome('differ', { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_SOFTINT) }),
    outcome('skipped', { 'qemu-tcg': { status: 'SKIP', reason: 'needs npt' }, kvm: { status: 'UNSUPPORTED', reason: 'a | b' } }),
  ], ['qemu-tcg', 'kvm', 'bochs']);
  r.backends[2] = backend('bochs', false, 'bochs has no SVM');
  const md = renderMarkdown(r);
  const lines = md.split('\n');

  it('has title, host, date and the backends table', () => {
    assert.equal(lines[0], '# svmconf conformance matrix');
    assert.ok(md.includes('AMD Ryzen 9 5950X (AuthenticAMD, family 19h model 21h stepping 0), kernel 6.8.0'));
    assert.ok(md.includes('2025-01-02T03:04:05.000Z'));
    assert.ok(lines.includes('| backend | available | version | reason | svm | npt | nrips |'));
    assert.ok(lines.includes('| `bochs` | no |  | bochs has no SVM | show+hide | show+hide | show only (the host CPU has NRIPS and KVM cannot hide it) |'));
  });

  it('has a section per template with case × backend rows and a verdict column', () => {
    assert.ok(lines.includes(`### \`${TID}\``));
    assert.ok(lines.includes('| case | `qemu-tcg` | `kvm` | `bochs` | verdict |'));
    assert.ok(!md.slice(md.indexOf('## Results')).includes('<details>'), 'a template with a divergence is not folded');
    assert.ok(lines.includes(`| \`same\` | OK ${digest(REC_EXCEPTION)} (ref) | OK = | — | agree |`));
    assert.ok(lines.includes(`| \`differ\` | OK ${digest(REC_EXCEPTION)} (ref) | OK ≠${digest(REC_SOFTINT)} | — | **diverge** |`));
    // UNSUPPORTED names no reason in its cell: the column's reasons are listed once, pipes escaped
    assert.ok(lines.includes('| `skipped` | SKIP: needs npt | UNSUPPORTED | — | none |'));
    assert.ok(lines.includes('  - not run ×1: a \\| b'), 'the reason once, under Conformance per implementation');
  });

  it('lists divergences with decoded field diffs, and the legend', () => {
    assert.ok(lines.includes('## Divergences (1)'));
    assert.ok(lines.includes(`### \`${TID}/differ\``));
    assert.ok(lines.includes('- exit_int_info: qemu-tcg V=1 TYPE=EXCEPTION VEC=#BP(3), kvm V=1 TYPE=SOFT_INT VEC=0x3'));
    for (const s of ['OK', 'SKIP', 'CRASH', 'TIMEOUT', 'ERROR', 'UNSUPPORTED']) assert.ok(lines.some((l) => l.startsWith(`- **${s}**: `)), s);
    for (const v of ['agree', 'diverge', 'single', 'none']) assert.ok(lines.some((l) => l.startsWith(`- **${v}**: `)), v);
  });
});

describe('report: results.json and atomic writes', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'svmconf-report-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const template = { id: TID, record: L, recordSize: 32 } as unknown as Template;
  const mkCase = (p: string): Case => ({ id: `${TID}/vec=${p}`, template, params: { vec: p }, requires: [] });

  function built(): Results {
    return buildResults({
      host: results([]).host,
      backends: [backend('qemu-tcg'), backend('kvm')],
      runs: [
        { case: mkCase('3'), results: { 'qemu-tcg': ok(REC_EXCEPTION), kvm: ok(REC_SOFTINT) } },
        { case: mkCase('4'), results: { 'qemu-tcg': { status: 'SKIP', reason: 'x', seconds: 0.5 }, kvm: ok(REC_EXCEPTION) } },
      ],
      generated: new Date('2025-05-06T07:08:09Z'),
    });
  }

  it('builds the schema-1 object from cases', () => {
    const r = built();
    assert.equal(r.schema, 'svmconf-results/1');
    assert.equal(r.generated, '2025-05-06T07:08:09.000Z');
    assert.deepEqual(Object.keys(r.layouts), [TID]);
    assert.deepEqual(r.layouts[TID], L);
    assert.deepEqual(r.cases.map((c) => [c.id, c.template, c.params]), [[`${TID}/vec=3`, TID, { vec: '3' }], [`${TID}/vec=4`, TID, { vec: '4' }]]);
  });

  it('round-trips through writeResults / readResults', async () => {
    const path = join(dir, 'results.json');
    const r = built();
    await writeResults(path, r);
    assert.deepEqual(await readResults(path), r);
    assert.equal(readFileSync(path, 'utf8'), serializeResults(r));
  });

  it('writeFileAtomic replaces the content and leaves no temporary file', async () => {
    const path = join(dir, 'matrix.md');
    writeFileSync(path, 'old content that is longer than the new one\n');
    await writeFileAtomic(path, 'new\n');
    assert.equal(readFileSync(path, 'utf8'), 'new\n');
    writeFileAtomicSync(path, new TextEncoder().encode('sync\n'));
    assert.equal(readFileSync(path, 'utf8'), 'sync\n');
    await writeMarkdown(path, built());
    assert.match(readFileSync(path, 'utf8'), /^# svmconf conformance matrix\n/);
    assert.deepEqual(readdirSync(dir), ['matrix.md']);
  });

  it('a failed write leaves the old file and no temporary file', async () => {
    const path = join(dir, 'sub');
    // Renaming a file over a non-empty directory fails after the temp file was written.
    await writeFileAtomic(join(dir, 'keep'), 'k');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path);
    writeFileSync(join(path, 'x'), 'x');
    await assert.rejects(writeFileAtomic(path, 'data'));
    assert.deepEqual(readdirSync(dir).sort(), ['keep', 'sub']);
    await assert.rejects(writeFileAtomic(join(dir, 'missing-dir', 'f'), 'data'), /ENOENT/);
  });

  it('rejects a wrong schema and malformed contents with a clear error', () => {
    const good = built();
    const text = (patch: (o: Record<string, unknown>) => void): string => {
      const o = JSON.parse(serializeResults(good)) as Record<string, unknown>;
      patch(o);
      return JSON.stringify(o);
    };
    assert.throws(() => parseResults(text((o) => { o.schema = 'svmconf-results/2'; }), 'out/results.json'),
      (e: Error) => e instanceof ResultsFormatError && /^out\/results\.json: \$\.schema: "svmconf-results\/2" is a different version/.test(e.message));
    assert.throws(() => parseResults(text((o) => { delete o.schema; })), /not an svmconf results file \(schema missing/);
    assert.throws(() => parseResults('{"schema": '), /not JSON/);
    assert.throws(() => parseResults(text((o) => { (o.cases as Array<{ results: Record<string, CaseResult> }>)[0]!.results.kvm!.status = 'PASS' as never; })),
      /\$\.cases\[0\]\.results\.kvm\.status: unknown status "PASS"/);
    assert.throws(() => parseResults(text((o) => { (o.cases as Array<{ results: Record<string, CaseResult> }>)[0]!.results.kvm!.record = 'ABCD'; })),
      /\$\.cases\[0\]\.results\.kvm\.record: expected lower-case hex/);
    assert.throws(() => parseResults(text((o) => { (o.layouts as Record<string, RecordField[]>)[TID]![0]!.size = 4; })),
      /\$\.layouts\.svm\.inject\.softint\[0\]\.size: 4 does not match type u64/);
    assert.doesNotThrow(() => parseResults(serializeResults(good)));
  });
});

describe('progress lines on a plain stream (bin/progress.ts)', () => {
  it('come every 5% of the results or every 10 s, and at the end', async () => {
    const { plainLineDue, createProgress } = await import('../bin/progress.ts');
    assert.equal(plainLineDue({ done: 50, total: 1000, lastDone: 0, msSinceLast: 100 }), true, '5% of 1000');
    assert.equal(plainLineDue({ done: 49, total: 1000, lastDone: 0, msSinceLast: 100 }), false);
    assert.equal(plainLineDue({ done: 3, total: 1000, lastDone: 2, msSinceLast: 10_000 }), true, '10 s');
    assert.equal(plainLineDue({ done: 1000, total: 1000, lastDone: 999, msSinceLast: 0 }), true, 'the end');
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => void lines.push(s) } as unknown as NodeJS.WriteStream;
    let t = 0;
    const p = createProgress(8248, stream, () => t);
    for (let i = 0; i < 8248; i++) {
      t += 1;
      p.caseDone('OK', 'model');
    }
    assert.ok(lines.length <= 21 && lines.length >= 20, `${lines.length} lines for 8,248 results`);
    assert.match(lines[lines.length - 1]!, /^progress: 8248\/8248 case results/);
  });
});
