// runner/lines.ts: the serial stream of a boot cut into protocol lines (docs/protocol.md).
import { strict as assert } from 'node:assert';
import { BootWatch, LineSplitter, lineRecorder } from '../runner/lines.ts';
import { formatCase, formatEnd, MAX_LINE_BYTES } from '../runner/protocol.ts';

describe('runner/lines', () => {
  it('cuts lines across chunks, strips CR before LF only, and hands over a cut-off last line at the end', () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l));
    s.push('SVMCONF BE');
    s.push('GIN\r\nCASE a\r');
    assert.deepEqual(got, ['SVMCONF BEGIN']);
    s.push('\nmid\rline\nlast, no newline\r');
    assert.deepEqual(got, ['SVMCONF BEGIN', 'CASE a', 'mid\rline']);
    s.end();
    s.end();
    assert.deepEqual(got, ['SVMCONF BEGIN', 'CASE a', 'mid\rline', 'last, no newline']);
  });

  it('keeps every line although the observer throws', () => {
    const lines: string[] = [];
    const s = new LineSplitter(lineRecorder(lines, () => {
      throw new Error('observer');
    }));
    s.push('a\nb\n');
    assert.deepEqual(lines, ['a', 'b']);
  });

  it('never holds more than one line of MAX_LINE_BYTES + 1: a longer line is handed over cut, its rest dropped', () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l));
    for (let i = 0; i < 100; i++) s.push('x'.repeat(1000)); // 100 kB without a newline
    s.push('yyy\nnext\n');
    assert.deepEqual(got.map((l) => l.length), [MAX_LINE_BYTES + 1, 4]);
    assert.equal(got[1], 'next');
  });

  it('BootWatch: the idle timer restarts on valid protocol lines only, and only for as many as the boot can print', async () => {
    const expired: string[] = [];
    const w = new BootWatch({ idleTimeoutMs: 150, cases: 1, vmm: 'test', onExpire: (d) => expired.push(d) });
    const feed = setInterval(() => w.push('noise, no protocol\n'), 10);
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(feed);
    assert.equal(expired.length, 1);
    assert.match(expired[0]!, /^no valid protocol line for 0\.15 s; test killed$/);

    // valid lines: BEGIN, CPUID, one case, END restart it; a fifth does not
    const v = new BootWatch({ idleTimeoutMs: 150, cases: 1, vmm: 'test', timers: false });
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 60));
      v.push(`${formatCase('t/a=1', 'OK', '00')}\n`);
      assert.equal(v.check(), undefined, `valid line ${i + 1}`);
    }
    await new Promise((r) => setTimeout(r, 60));
    v.push(`${formatEnd()}\n`);
    await new Promise((r) => setTimeout(r, 110)); // 170 ms after the last line that counted, before the 450 ms limit
    assert.match(v.check() ?? '', /^no valid protocol line/);
    w.stop();
  });

  it('BootWatch: output beyond what the cases can print ends the boot at once', () => {
    const expired: string[] = [];
    const w = new BootWatch({ idleTimeoutMs: 60_000, cases: 2, vmm: 'QEMU', onExpire: (d) => expired.push(d) });
    for (let i = 0; i < 200 && !expired.length; i++) w.push('flood\n'.repeat(100));
    w.stop();
    assert.match(expired[0] ?? '', /^the boot printed more than \d+ bytes, more than 2 case\(s\) can/);
    assert.ok(w.lines.length < 20_000);
  });
});

