// The findings register (report/findings.ts): its checks against the deviation registry, the page
// rendered from both, and that docs/findings.md is what the shipped register gives.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseDeviations } from '../report/deviations.ts';
import { FindingError, parseFindings, renderFindings } from '../report/findings.ts';
import { spawnSync } from 'node:child_process';
import { thrown } from './support/thrown.ts';

const ROOT = join(import.meta.dirname, '..');
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const entry = (id: string, fixed = false): string => `
- id: ${id}
  backend: qemu-tcg
  versions: { range: "QEMU 7.2", match: "^QEMU 7\\\\.2\\\\.", checked: ["QEMU 7.2.22"]${fixed ? ', fixed: { in: "QEMU 11.1.3", by: "commit 1234567" }' : ''} }
  cases: ["svm.bp_intercept/insn=cc,*"]
  fields: [exit_code]
  observed: { exit_code: "0x4d" }
  expected: "VMEXIT_EXCP_BP"
  summary: "INT3 misses the #BP intercept"
  evidence:
    manual: "APM vol. 2 §15.12"
    threads: ["https://example.invalid/t"]
`;
const REGISTRY = parseDeviations(entry('a-present') + entry('b-fixed', true), 'dev.yaml');
const finding = (id: string, status: string, devs: string[], extra = ''): string =>
  `- id: ${id}\n  title: T ${id}\n  component: QEMU target/i386/tcg\n  status: ${status}\n  what: >-\n    What happens.\n  deviations: [${devs.join(', ')}]\n${extra}`;

const errorOf = (text: string, complete = true): FindingError => thrown(() => parseFindings(text, REGISTRY, 'f.yaml', { complete }), FindingError);

describe('findings: the register', () => {
  it('parses, and renders every entry under its finding with the values and versions of the registry', () => {
    const f = parseFindings(finding('x', 'bug', ['a-present']) + finding('y', 'fixed', ['b-fixed'], '  upstream: ["https://example.invalid/fix"]\n'), REGISTRY);
    assert.deepEqual(f.map((x) => [x.id, x.status, x.deviations]), [['x', 'bug', ['a-present']], ['y', 'fixed', ['b-fixed']]]);
    const page = renderFindings(f, REGISTRY);
    assert.match(page, /\| QEMU \| 1 \| 1 \| 0 \| 0 \|/, 'counts per project and status');
    assert.match(page, /### `a-present` \(expected\/deviations\.yaml:2\)|### `a-present` \(dev\.yaml:2\)/);
    assert.match(page, /exit_code = `0x4d`/);
    assert.match(page, /\*\*Fixed in:\*\* QEMU 11\.1\.3 \(commit 1234567\)/);
  });

  it('refuses an unknown entry, an entry in two findings, and an entry in none', () => {
    assert.match(errorOf(finding('x', 'bug', ['nope'])).message, /^f\.yaml:1: `nope` is not an entry/);
    assert.match(errorOf(finding('x', 'bug', ['a-present']) + finding('y', 'fixed', ['b-fixed', 'a-present'])).message, /`a-present` already belongs to finding `x`/);
    assert.match(errorOf(finding('x', 'bug', ['a-present'])).message, /registry entries in no finding .*: b-fixed/);
    assert.doesNotThrow(() => parseFindings(finding('x', 'bug', ['a-present']), REGISTRY, 'f.yaml', { complete: false }), 'a run with extra registries');
  });

  it('a status must agree with the entries: fixed needs versions.fixed on each, bug needs one still present', () => {
    assert.match(errorOf(finding('x', 'fixed', ['a-present', 'b-fixed'])).message, /status fixed, but `a-present` has no versions\.fixed/);
    assert.match(errorOf(finding('x', 'bug', ['b-fixed']) + finding('y', 'bug', ['a-present'])).message, /status bug, but every entry has versions\.fixed/);
    assert.match(errorOf(finding('x', 'maybe', ['a-present', 'b-fixed'])).message, /status `maybe` is not one of/);
    assert.match(errorOf(finding('x', 'bug', ['a-present', 'b-fixed']) + '  colour: red\n').message, /unknown key `colour`/);
    // a ` #` on a value's line would silently cut a title such as "raises #UD"
    assert.match(errorOf(finding('x', 'bug', ['a-present', 'b-fixed']).replace('title: T x', 'title: INT3 raises #UD')).message, /^f\.yaml:2: a `#` after this value starts a YAML comment/);
  });

  it('docs/findings.md is what expected/findings.yaml and expected/deviations.yaml give (svmconf findings --check)', function () {
    if (!existsSync(join(ROOT, 'expected', 'findings.yaml'))) this.skip();
    const r = cli(['findings', '--check']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^docs\/findings\.md is current: \d+ findings over \d+ registry entries\n$/);
  });
});
