// Generator: front matter validation, matrix expansion and exclusions, case ids, kernel planning,
// and errors that name the template file and line.

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTemplate } from '../generator/template.ts';
import { expandTemplate, expandAll, filterCases, caseRequirements } from '../generator/matrix.ts';
import { planKernels, caseSource, cpuConfigOf } from '../generator/kernel.ts';
import { makeRenderer, buildKernels, loadTemplates, expandAll as expandAllIndex, TemplateError } from '../generator/index.ts';

const FRONT = `---
id: t.sample
title: a sample
checks: that the generator works
requires: [svm]
feature_params: [nrips]
matrix:
  vec: [0x20, 0x21, 0x80]
  nrips: [on, off]
exclude:
  - { vec: 0x80, nrips: off }
record:
  - { name: a, type: u64, decode: exitcode, doc: "first" }
  - { name: b, type: u32, doc: "second" }
  - { name: c, type: u16, doc: "third" }
---
`;
const BODY = '\tnop\n\tCASE_OK\n';

function sample(front = FRONT, body = BODY) {
  return parseTemplate('/x/t.S.hbs', 'templates/t.S.hbs', front + body);
}

function templateError(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TemplateError, `expected a TemplateError, got ${String(e)}`);
    return e;
  }
  assert.fail('no error thrown');
}

describe('generator: front matter', () => {
  it('parses fields, keeps parameter values as written, packs the record', () => {
    const t = sample();
    assert.equal(t.id, 't.sample');
    assert.deepEqual(t.matrix, [
      { name: 'vec', values: ['0x20', '0x21', '0x80'] },
      { name: 'nrips', values: ['on', 'off'] },
    ]);
    assert.deepEqual(t.record.map((f) => [f.name, f.offset, f.size, f.decode]), [
      ['a', 0, 8, 'exitcode'],
      ['b', 8, 4, 'hex'],
      ['c', 12, 2, 'hex'],
    ]);
    assert.equal(t.recordSize, 14);
    assert.equal(t.bodyLine, FRONT.split('\n').length);
  });

  it('names file and line of an unknown key', () => {
    const e = templateError(() => sample(FRONT.replace('checks:', 'chekcs:')));
    assert.equal(e.file, 'templates/t.S.hbs');
    assert.equal(e.line, 4);
    assert.match(e.message, /unknown key `chekcs`/);
  });

  it('names the line of a bad record type', () => {
    const e = templateError(() => sample(FRONT.replace('type: u32', 'type: u31')));
    assert.equal(e.line, 14);
    assert.match(e.message, /`u31` is not one of u8, u16, u32, u64/);
  });

  it('rejects a misaligned field, an unknown feature, an exclusion of an unknown value', () => {
    assert.match(templateError(() => sample(FRONT.replace('{ name: b, type: u32', '{ name: b, type: u8'))).message, /not 2-byte aligned/);
    assert.match(templateError(() => sample(FRONT.replace('requires: [svm]', 'requires: [svn]'))).message, /unknown feature `svn`/);
    assert.match(templateError(() => sample(FRONT.replace('{ vec: 0x80, nrips: off }', '{ vec: 0x81 }'))).message, /`0x81` is not a value of `vec`/);
  });

  it('rejects values that would break the protocol line and a missing front matter', () => {
    assert.match(templateError(() => sample(FRONT.replace('[0x20, 0x21, 0x80]', '["0x20", "a b"]'))).message, /without spaces/);
    assert.match(templateError(() => parseTemplate('/x', 'x', '\tnop\n')).message, /starts with a `---` line/);
  });

  it('refuses a `#` comment on a value line, which would cut a title such as "#UD in 64-bit mode"', () => {
    const e = templateError(() => sample(FRONT.replace('title: a sample', 'title: INTO raises #OF')));
    assert.match(e.message, /starts a YAML comment \("#OF"\).*quote the value/);
    assert.equal(e.line, 3);
    assert.equal(sample(FRONT.replace('title: a sample', 'title: "INTO raises #OF"')).title, 'INTO raises #OF');
  });

  it('reports invalid YAML with its line', () => {
    const e = templateError(() => sample(FRONT.replace('title: a sample', 'title: a: b')));
    assert.match(e.message, /not valid YAML/);
    assert.equal(e.line, 3);
  });
});

describe('generator: matrix', () => {
  it('expands the product in declaration order minus exclusions, with stable ids', () => {
    const ids = expandTemplate(sample()).map((c) => c.id);
    assert.deepEqual(ids, [
      't.sample/vec=0x20,nrips=on',
      't.sample/vec=0x20,nrips=off',
      't.sample/vec=0x21,nrips=on',
      't.sample/vec=0x21,nrips=off',
      't.sample/vec=0x80,nrips=on',
    ]);
  });

  it('an exclusion may list several values per parameter: it removes the product of its lists', () => {
    const t = sample(FRONT.replace('{ vec: 0x80, nrips: off }', '{ vec: [0x20, 0x80], nrips: off }'));
    assert.deepEqual(t.exclude, [{ vec: ['0x20', '0x80'], nrips: ['off'] }]);
    assert.deepEqual(expandTemplate(t).map((c) => c.id), [
      't.sample/vec=0x20,nrips=on',
      't.sample/vec=0x21,nrips=on',
      't.sample/vec=0x21,nrips=off',
      't.sample/vec=0x80,nrips=on',
    ]);
    // the list form and the equivalent single-value items give the same cases
    const split = sample(FRONT.replace('  - { vec: 0x80, nrips: off }\n', '  - { vec: 0x20, nrips: off }\n  - { vec: 0x80, nrips: off }\n'));
    assert.deepEqual(expandTemplate(split).map((c) => c.id), expandTemplate(t).map((c) => c.id));
  });

  it('names the line of a bad value inside an exclusion list, an empty list and a value listed twice', () => {
    const bad = templateError(() => sample(FRONT.replace('{ vec: 0x80, nrips: off }', '{ vec: [0x20, 0x99] }')));
    assert.match(bad.message, /`0x99` is not a value of `vec`/);
    assert.equal(bad.line, 11);
    assert.match(templateError(() => sample(FRONT.replace('{ vec: 0x80, nrips: off }', '{ vec: [] }'))).message, /empty list of values/);
    assert.match(templateError(() => sample(FRONT.replace('{ vec: 0x80, nrips: off }', '{ vec: [0x20, 0x20] }'))).message, /`0x20` listed twice/);
  });

  it('turns feature parameters into requirements and CPU configurations', () => {
    const t = sample();
    assert.deepEqual(caseRequirements(t, { vec: '0x20', nrips: 'off' }), [
      { feature: 'svm', present: true },
      { feature: 'nrips', present: false },
    ]);
    const [on, off] = expandTemplate(t);
    assert.deepEqual(cpuConfigOf(on!), { nrips: true });
    assert.deepEqual(cpuConfigOf(off!), { nrips: false });
  });

  it('a template without a matrix has one case named by the template id', () => {
    const t = sample(FRONT.replace(/feature_params[\s\S]*?record:/, 'record:'));
    assert.deepEqual(expandTemplate(t).map((c) => c.id), ['t.sample']);
  });

  it('filters by glob and refuses duplicate template ids', () => {
    const cases = expandTemplate(sample());
    assert.deepEqual(filterCases(cases, ['*vec=0x2?,nrips=on']).map((c) => c.params.vec), ['0x20', '0x21']);
    assert.throws(() => expandAll([sample(), sample()]), /already used by/);
  });

  it('plans one kernel per template and CPU configuration, split at the batch size', () => {
    const plans = planKernels(expandTemplate(sample()), 2);
    assert.deepEqual(plans.map((p) => [p.id, p.cases.length, p.cpu.nrips]), [
      ['t.sample@nrips-on#0', 2, true],
      ['t.sample@nrips-on#1', 1, true],
      ['t.sample@nrips-off#0', 2, false],
    ]);
  });
});

describe('generator: rendering and assembly errors', () => {
  it('renders a case with its record symbols and requirement checks', async () => {
    const r = await makeRenderer();
    const c = expandTemplate(sample(FRONT, '\tmov $0x{{vec}}, %eax\n\tCASE_OK\n'))[0]!;
    const src = caseSource(r, c, 0);
    assert.match(src, /\.set REC_b, 8\n\.set REC_W_b, 4/);
    assert.match(src, /call\tcpu_has_svm/);
    assert.match(src, /call\tcpu_has_nrips\n\ttest\t%eax, %eax\n\tjnz/);
    assert.match(src, /mov \$0x0x20, %eax #@\d+:17/);
  });

  it('a Handlebars error names the template and line', async () => {
    const r = await makeRenderer();
    const c = expandTemplate(sample(FRONT, '\tnop\n\tmov ${{vecc}}, %eax\n'))[0]!;
    const e = await Promise.resolve().then(() => caseSource(r, c, 0)).then(() => undefined, (x) => x);
    assert.ok(e instanceof TemplateError);
    assert.equal(e.file, 'templates/t.S.hbs');
    assert.match(e.message, /"vecc" not defined/);
  });

  it('an assembler error names the template file and line and shows the rendered line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-typo-'));
    await mkdir(join(dir, 'bad'));
    const body = '\tnop\n\tmovq ${{vec}}, %rax\n\tintt $3\n\tCASE_OK\n';
    await writeFile(join(dir, 'bad', 'typo.S.hbs'), FRONT.replace('id: t.sample', 'id: t.typo') + body);
    const templates = (await loadTemplates([dir])).filter((t) => t.id === 't.typo');
    const cases = expandAllIndex(templates).slice(0, 1);
    const err = await buildKernels(cases, { extraDirs: [dir], cacheDir: join(dir, 'cache') }).then(() => undefined, (x) => x);
    assert.ok(err instanceof TemplateError, String(err));
    assert.match(err.file, /bad\/typo\.S\.hbs$/);
    assert.equal(err.line, FRONT.split('\n').length + 2);
    assert.match(err.message, /no such instruction: `intt \$3'/);
    assert.match(err.message, /rendered for case t\.typo\/vec=0x20,nrips=on, line \d+ of .*\n\s+intt \$3/);
  });

  it('refuses an instruction the reference model does not execute, naming the template line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svmconf-isa-'));
    const front = FRONT.replace('id: t.sample', 'id: t.isa').replace('requires: [svm]\nfeature_params: [nrips]\n', '').replace('  nrips: [on, off]\n', '').replace('  - { vec: 0x80, nrips: off }\n', '').replace('exclude:\n', '');
    await writeFile(join(dir, 'isa.S.hbs'), `${front}\tnop\n\txadd %eax, %ebx\n\tCASE_OK\n`);
    const cases = expandAllIndex((await loadTemplates([dir])).filter((t) => t.id === 't.isa')).slice(0, 1);
    const err = await buildKernels(cases, { extraDirs: [dir], cacheDir: join(dir, 'cache') }).then(() => undefined, (x) => x);
    assert.ok(err instanceof TemplateError, String(err));
    assert.equal(err.line, front.split('\n').length + 1);
    assert.match(err.message, /model: unsupported instruction xadd/);
    // the same case builds when the check is off (a backend-only build)
    await buildKernels(cases, { extraDirs: [dir], cacheDir: join(dir, 'cache'), checkModel: false });
  });
});
