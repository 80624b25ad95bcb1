// A saved serial log as the console backend (runner/backends/console-log.ts) and `svmconf
// parse-log`. test/fixtures/publish/l1-qemu-bios.serial.log is the COM1 output of QEMU 7.2 TCG
// (SeaBIOS, -cpu qemu64,+svm,+npt) booting `svmconf iso --filter 'l1.*' --menu-timeout 0`, as
// captured by `-serial stdio`: GRUB's escape sequences, CRs and the loader's plain lines included.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Case, Kernel, Results } from '../core/types.ts';
import { crc32Hex } from '../runner/crc32.ts';
import { consoleLogBackend, ConsoleLogError, lavaLogText, logEnding, logLines } from '../runner/backends/console-log.ts';
import { FIXTURES } from './support/publish-fixtures.ts';
import { parse as parseYaml } from 'yaml';
import { SUITE_BEGIN, SUITE_DONE } from '../runner/backends/console.ts';

const ROOT = resolve(import.meta.dirname, '..');
const line = (body: string): string => `SVMCONF ${body} ${crc32Hex(`SVMCONF ${body}`)}`;

/** A kernel of two cases; only ids matter to the console's parser. */
const KERNEL = { id: 't.two#0', cases: [{ id: 't.two/a=1' }, { id: 't.two/a=2' }] as unknown as Case[], cpu: {}, elf: '', bin: '', map: '' } as Kernel;

describe('console log (parse-log)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'svmconf-log-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text, 'latin1');
    return p;
  };

  it('cleans a terminal stream and reads every case of a complete boot', async () => {
    const log = write('ok.log', [
      '\x1b[H\x1b[J\x1b[1;1H  Booting `svmconf: full suite\'\r', '\rsvmconf-suite: begin 1\r',
      line('BEGIN t.two#0 2 0'), line('CASE t.two/a=1 OK 0102'), `noise ${line('CASE t.two/a=2 SKIP(nrips) -')}`, line('END'), 'svmconf-suite: done', '',
    ].join('\r\n'));
    const run = await consoleLogBackend(log).runSuite([KERNEL], { idleTimeoutMs: 1000 });
    assert.equal(run.end, 'done');
    assert.deepEqual(run.results.get('t.two/a=1'), { status: 'OK', record: '0102' });
    assert.equal(run.results.get('t.two/a=2')?.status, 'SKIP');
  });

  it('reads a LAVA job log (YAML entries, the target\'s lines) like the raw console', async () => {
    const target = ['svmconf-suite: begin 1', line('BEGIN t.two#0 2 0'), line('CASE t.two/a=1 OK 0102'), line('CASE t.two/a=2 OK 0304'), line('END'), 'svmconf-suite: done'];
    const entries = [
      { dt: '2026-11-25T06:00:00.000000', lvl: 'info', msg: 'start: 2.1 minimal-boot' },
      ...target.map((msg, i) => ({ dt: `2026-11-25T06:00:0${i}.000000`, lvl: 'target', msg })),
      { dt: '2026-11-25T06:00:09.000000', lvl: 'results', msg: { case: 't.two/a=1', result: 'pass' } },
    ];
    assert.equal(lavaLogText('SVMCONF BEGIN x'), undefined, 'raw serial text is not a LAVA log');
    const log = write('lava.yaml', entries.map((e) => `- ${JSON.stringify(e)}`).join('\n') + '\n');
    const run = await consoleLogBackend(log).runSuite([KERNEL], { idleTimeoutMs: 1000 });
    assert.equal(run.end, 'done');
    assert.deepEqual([run.results.get('t.two/a=1')?.record, run.results.get('t.two/a=2')?.record], ['0102', '0304']);
    assert.ok(!run.lines.some((l) => l.includes('minimal-boot')), 'only the target\'s lines');
  });

  it('never passes a case the log does not show with a valid line', async () => {
    const bad = line('CASE t.two/a=1 OK 0102').replace(/ OK 0102 /, ' OK 0103 '); // record changed, CRC kept
    const log = write('cut.log', ['svmconf-suite: begin 1', line('BEGIN t.two#0 2 0'), bad, ''].join('\n'));
    const run = await consoleLogBackend(log).runSuite([KERNEL], { idleTimeoutMs: 1000 });
    assert.equal(run.end, 'exited');
    assert.equal(run.results.get('t.two/a=1')?.status, 'ERROR', 'bad CRC');
    assert.notEqual(run.results.get('t.two/a=2')?.status, 'OK');
    assert.equal(logEnding(logLines('svmconf-suite: begin 1\nsvmconf-suite: begin 1\n')).end, 'restarted');
  });

  it('names the file when it is missing or not a log of the suite', async () => {
    await assert.rejects(consoleLogBackend(join(dir, 'none.log')).runSuite([KERNEL], { idleTimeoutMs: 1000 }), (e: Error) => e instanceof ConsoleLogError && /none\.log: cannot read/.test(e.message));
    const other = write('other.log', 'Linux version 6.1\nlogin:\n');
    await assert.rejects(consoleLogBackend(other).runSuite([KERNEL], { idleTimeoutMs: 1000 }), /other\.log: no "SVMCONF BEGIN" line/);
  });

  it('docs/lava-job.yaml watches the loader\'s own lines and matches every CASE line of a real boot', () => {
    const job = parseYaml(readFileSync(join(ROOT, 'docs', 'lava-job.yaml'), 'utf8')) as { actions: Array<Record<string, { monitors?: Array<Record<string, string | Record<string, string>>> }>> };
    const monitor = job.actions.find((a) => a.test)!.test!.monitors![0]!;
    assert.equal(monitor.start, SUITE_BEGIN.trim());
    assert.equal(monitor.end, SUITE_DONE);
    // LAVA's patterns are Python regular expressions: (?P<name>…) is (?<name>…) in JavaScript
    const re = new RegExp((monitor.pattern as string).replace(/\(\?P</g, '(?<'));
    const cases = readFileSync(join(FIXTURES, 'l1-qemu-bios.serial.log'), 'latin1').split('\n').filter((l) => l.startsWith('SVMCONF CASE '));
    assert.equal(cases.length, 42);
    for (const l of cases) {
      const m = re.exec(l);
      assert.ok(m?.groups, l);
      assert.ok(Object.keys(monitor.fixupdict as Record<string, string>).includes(m.groups.result!), l);
      assert.equal(m.groups.test_case_id, l.split(' ')[2]);
    }
  });

  it('svmconf parse-log turns a captured QEMU boot of the image into results.json, the model under the machine\'s family profile', async function () {
    this.timeout(120_000);
    const out = join(dir, 'out');
    const r = await promisify(execFile)(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), 'parse-log', join(FIXTURES, 'l1-qemu-bios.serial.log'),
      // the log's image holds the L1 templates of its day (l1.rf_frame came later)
      '--filter', 'l1.faults/*', '--filter', 'l1.icebp/*', '--filter', 'l1.int3/*', '--filter', 'l1.intn/*', '--filter', 'l1.into_bound/*',
      '--machine-cpu', '0x00060FB1', '--out', out], { cwd: ROOT }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    // the registry's QEMU entries are about qemu-tcg, not a console: the 10 QEMU deviations diverge here (exit 1)
    assert.equal(r.code, 1, r.stderr);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
    assert.deepEqual(results.backends.map((b) => b.name), ['model', 'console']);
    assert.equal(results.cases.length, 42);
    assert.ok(results.cases.every((c) => c.results.console?.status === 'OK'));
    const cpu = results.backends[1]!.cpu!;
    assert.deepEqual([cpu.family, cpu.model, cpu.familyName, cpu.profile], [15, 107, 'K8 (rev. F/G)', 'amd-10h'], 'qemu64: CPUID 1 EAX 0x00060FB1');
    assert.equal(results.backends[0]!.cpu?.profile, 'amd-10h', 'no --profile: the model follows the console machine\'s family');
    assert.match(results.backends[0]!.version ?? '', /profile amd-10h/);
  });
});
