// `--format ktap`: what svmconf prints passes a KTAP version 1 parser written from the kernel's
// specification (test/support/ktap-parser.ts), and its results are the run's own: every count is
// checked against results.json.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KtapParseError, parseKtap } from './support/ktap-parser.ts';
import { ktapDescription } from '../report/ktap.ts';

const ROOT = join(import.meta.dirname, '..');
const svmconf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), ...args], { encoding: 'utf8', cwd: ROOT, maxBuffer: 64 << 20 });

describe('KTAP output (--format ktap)', function () {
  this.timeout(300_000);

  it('the parser refuses what the specification forbids', () => {
    assert.throws(() => parseKtap('TAP version 13\n1..0\n'), KtapParseError);
    assert.throws(() => parseKtap('KTAP version 1\n1..2\nok 1 a\n'), /plan says 2/);
    assert.throws(() => parseKtap('KTAP version 1\n1..2\nok 1 a\nok 3 b\n'), /test number 3, expected 2/);
    assert.throws(() => parseKtap('KTAP version 1\n1..1\nfine 1 a\n'), /expected a result line/);
    assert.deepEqual(parseKtap('KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  # note\n  ok 1 x # SKIP why\nok 1 top\n')[0]!.subtests[0],
      { number: 1, ok: true, description: 'x', directive: 'SKIP', diagnostic: 'why', subtests: [], notes: ['note'] });
    assert.equal(ktapDescription('a#b\nc'), 'a%23b c');
  });

  it('a run on model and qemu-tcg: one subtest per column, one test per case, verdicts as results.json has them', function () {
    if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0) this.skip();
    const out = mkdtempSync(join(tmpdir(), 'svmconf-ktap-'));
    const r = svmconf(['run', '--backend', 'model,qemu-tcg', '--filter', 'l1.icebp/*', '--filter', 'svm.inject.softint/*', '--format', 'ktap', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const top = parseKtap(r.stdout);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cases: Array<{ id: string; results: Record<string, { status: string }> }>; deviations?: Record<string, unknown> };
    assert.deepEqual(top.map((t) => t.description), ['model', 'qemu-tcg']);
    for (const col of top) {
      assert.equal(col.subtests.length, results.cases.length);
      col.subtests.forEach((t, i) => {
        const c = results.cases[i]!;
        assert.equal(t.description, c.id);
        const st = c.results[col.description]!.status;
        if (st === 'SKIP' || st === 'UNSUPPORTED') assert.equal(t.directive, 'SKIP', c.id);
        else assert.equal(t.ok, st === 'OK', c.id);
        const known = col.description === 'qemu-tcg' && results.deviations?.[c.id] !== undefined;
        assert.equal(t.notes.some((n) => n.startsWith('known deviation: ')), known, c.id);
      });
      assert.ok(col.ok, `${col.description}: no case diverges in this selection`);
    }
    assert.ok(top[1]!.subtests.some((t) => t.notes.some((n) => n === 'known deviation: qemu-icebp-ud')), 'ICEBP on QEMU 7.2 is the known #UD');
    assert.ok(top[1]!.subtests.some((t) => t.directive === 'SKIP' && /needs nrips/.test(t.diagnostic ?? '')), 'UNSUPPORTED with its reason');
  });
});
