// runner/terminal.ts: a console's byte stream to lines, without ever changing a protocol line.

import assert from 'node:assert/strict';
import { cleanText, TerminalLines } from '../runner/terminal.ts';
import { formatBegin, formatCase, formatEnd, parseBoot } from '../runner/protocol.ts';

function feed(chunks: string[]): string[] {
  const out: string[] = [];
  const t = new TerminalLines((l) => out.push(l));
  for (const c of chunks) t.push(c);
  t.end();
  return out;
}

describe('runner/terminal: line cleaner', () => {
  const line = formatCase('l1.int3/enc=cc,prefix=none', 'OK', '0300000000000000');

  it('ends lines at LF, CR LF and a lone CR, with no empty line for CR LF', () => {
    assert.deepEqual(feed(['a\r\nb\nc\rd\n']), ['a', 'b', 'c', 'd']);
    assert.deepEqual(feed(['a\r', '\nb\r\n']), ['a', 'b']); // CR and LF in different chunks
  });

  it('strips CSI, OSC, charset and two-byte escape sequences and control bytes', () => {
    assert.equal(cleanText('\x1b[2J\x1b[1;1H\x1b[0mGRUB\x1b[?25l \x1b]0;title\x07menu\x1b(B\x1b=\x07\x08'), 'GRUB menu');
    assert.deepEqual(feed(['\x1b[1;37;40m*svmconf: full suite\x1b[0m\x1b[K\n']), ['*svmconf: full suite']);
  });

  it('keeps an escape sequence cut by a chunk boundary from leaking into the text', () => {
    assert.deepEqual(feed(['x\x1b[1;3', '7mY\n']), ['xY']);
    assert.deepEqual(feed(['\x1b', '[K', line, '\r\n']), [line]);
  });

  it('leaves a protocol line intact whatever the chunking, so its CRC still holds', () => {
    const stream = `GRUB noise\x1b[H\r\n  Booting \`svmconf\'\r\n\r\n${line}\r\n`;
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      const lines = feed(chunks);
      assert.ok(lines.includes(line), `chunk size ${size}: ${JSON.stringify(lines)}`);
      const p = parseBoot([formatBegin('l1.int3#0', 1, 0), ...lines, formatEnd()], ['l1.int3/enc=cc,prefix=none'], 0);
      assert.deepEqual(p.cases.get('l1.int3/enc=cc,prefix=none'), { status: 'OK', record: '0300000000000000' });
    }
  });

  it('never glues a redrawn line to the protocol line after it', () => {
    const lines = feed([`The highlighted entry will be executed automatically in 0s.\r${line}\n`]);
    assert.deepEqual(lines, ['The highlighted entry will be executed automatically in 0s.', line]);
  });

  it('flushes an endless line (a screen drawn without newlines) and the last unterminated line', () => {
    const out: string[] = [];
    const t = new TerminalLines((l) => out.push(l), 10);
    t.push('0123456789abcdef');
    assert.equal(out.length, 1);
    t.push('tail');
    t.end();
    assert.equal(out.join(''), '0123456789abcdeftail');
  });
});
