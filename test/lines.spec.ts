// runner/lines.ts: the serial stream of a boot cut into protocol lines (docs/protocol.md).
import { strict as assert } from 'node:assert';
import { LineSplitter, lineRecorder } from '../runner/lines.ts';

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
});
