import assert from 'node:assert/strict';
import { crc32Hex } from '../runner/crc32.ts';
import {
  formatBegin,
  formatCase,
  formatEnd,
  formatLine,
  formatPanic,
  isValidLine,
  MAX_LINE_BYTES,
  NOT_REACHED,
  parseBoot,
  splitSerial,
  type CaseParse,
} from '../runner/protocol.ts';

const IDS = ['t.x/a=1', 't.x/a=2', 't.x/a=3', 't.x/a=4'] as const;
const K = 't.x#0';
const REC = '0300000000000000';

function batch(start = 0, end: number = IDS.length): string[] {
  const lines = [formatBegin(K, IDS.length, start)];
  for (let i = start; i < end; i++) lines.push(formatCase(IDS[i]!, 'OK', REC));
  lines.push(formatEnd());
  return lines;
}

function status(r: CaseParse | undefined): string | undefined {
  return r === undefined || r === NOT_REACHED ? (r as string | undefined) : r.status;
}

/** Change one character of a line without touching its CRC. */
function corrupt(line: string, at: number): string {
  const c = line[at] === '0' ? '1' : '0';
  return line.slice(0, at) + c + line.slice(at + 1);
}

describe('runner/protocol', () => {
  it('formats lines with the CRC of the bytes before the last space', () => {
    assert.equal(formatLine('SVMCONF END'), `SVMCONF END ${crc32Hex('SVMCONF END')}`);
    assert.equal(formatEnd(), formatLine('SVMCONF END'));
    assert.equal(formatBegin('k#1', 3, 2), formatLine('SVMCONF BEGIN k#1 3 2'));
    assert.match(formatCase('a', 'SKIP(x)'), /^SVMCONF CASE a SKIP\(x\) - [0-9a-f]{8}$/);
    assert.match(formatPanic('bad thing'), /^SVMCONF PANIC bad_thing [0-9a-f]{8}$/);
  });

  it('parses a good batch', () => {
    const p = parseBoot(batch(), IDS, 0, { kernelId: K });
    assert.equal(p.ended, true);
    assert.deepEqual(p.begin, { kernelId: K, ncases: 4, start: 0 });
    assert.equal(p.firstUnfinished, -1);
    assert.deepEqual(p.problems, []);
    for (const id of IDS) assert.deepEqual(p.cases.get(id), { status: 'OK', record: REC });
  });

  it('only judges the cases from start on', () => {
    const p = parseBoot(batch(2), IDS, 2, { kernelId: K });
    assert.deepEqual([...p.cases.keys()], IDS.slice(2));
    assert.equal(status(p.cases.get(IDS[2])), 'OK');
  });

  it('makes a bad CRC an ERROR for the case it names and trusts nothing after it', () => {
    const lines = batch();
    lines[2] = corrupt(lines[2]!, lines[2]!.indexOf(REC) + 2); // record byte changed on the wire
    const p = parseBoot(lines, IDS, 0);
    const r = p.cases.get(IDS[1]);
    assert.equal(status(r), 'ERROR');
    assert.match((r as { reason: string }).reason, /bad CRC/);
    assert.match(p.untrusted ?? '', /expecting t\.x\/a=2/);
    // the valid lines after it are not credited: those cases run again in a new boot
    assert.equal(p.cases.get(IDS[2]), NOT_REACHED);
    assert.equal(p.firstUnfinished, 2);
  });

  it('charges a line with an unreadable id to the case expected next', () => {
    const lines = batch();
    lines[2] = lines[2]!.replace('t.x/a=2', 't.x/a=Z'); // the id itself got corrupted
    const p = parseBoot(lines, IDS, 0);
    assert.equal(status(p.cases.get(IDS[1])), 'ERROR');
    assert.equal(p.cases.get(IDS[2]), NOT_REACHED);
  });

  it('treats a line cut short as an ERROR (truncated), never a pass', () => {
    const lines = batch().slice(0, 3);
    lines.push(formatCase(IDS[2]!, 'OK', REC).slice(0, -5)); // boot killed mid-line
    const p = parseBoot(lines, IDS, 0);
    const r = p.cases.get(IDS[2]);
    assert.equal(status(r), 'ERROR');
    assert.match((r as { reason: string }).reason, /truncated/);
    assert.equal(p.ended, false);
    assert.equal(p.firstUnfinished, 3);
  });

  it('a truncated id is not trusted: the expected case gets the ERROR', () => {
    const lines = [formatBegin(K, 4, 0), 'SVMCONF CASE t.x/a=3'];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(status(p.cases.get(IDS[0])), 'ERROR');
    assert.equal(status(p.cases.get(IDS[2])), NOT_REACHED);
  });

  it('reports a missing END with the first case without a result', () => {
    const lines = batch().slice(0, 3); // BEGIN, case 0, case 1
    const p = parseBoot(lines, IDS, 0);
    assert.equal(p.ended, false);
    assert.equal(p.firstUnfinished, 2);
    assert.equal(p.cases.get(IDS[2]), NOT_REACHED);
    assert.equal(p.cases.get(IDS[3]), NOT_REACHED);
  });

  it('reports PANIC and keeps what follows as noise', () => {
    const lines = [...batch().slice(0, 2), formatPanic('crash in crash handler'), formatCase(IDS[1]!, 'OK', REC)];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(p.panic, 'crash_in_crash_handler');
    assert.equal(p.firstUnfinished, 1);
    assert.equal(p.cases.get(IDS[1]), NOT_REACHED);
    assert.equal(p.noise.length, 1);
  });

  it('parses SKIP with its reason and a - record', () => {
    const lines = [
      formatBegin(K, 4, 0),
      formatCase(IDS[0]!, 'SKIP(no_nrips)'),
      formatCase(IDS[1]!, 'SKIP(needs NPT)'),
      formatCase(IDS[2]!, 'CRASH', '0e'.padEnd(96, '0')),
      formatCase(IDS[3]!, 'OK', REC),
      formatEnd(),
    ];
    const p = parseBoot(lines, IDS, 0);
    assert.deepEqual(p.cases.get(IDS[0]), { status: 'SKIP', reason: 'no_nrips' });
    assert.deepEqual(p.cases.get(IDS[1]), { status: 'SKIP', reason: 'needs NPT' });
    assert.equal(status(p.cases.get(IDS[2])), 'CRASH');
    assert.equal((p.cases.get(IDS[2]) as { record: string }).record.length, 96);
  });

  it('rejects records that are not even-length lower-case hex, and OK without a record', () => {
    const bad = [formatCase(IDS[0]!, 'OK', '0A00'), formatCase(IDS[0]!, 'OK', '000'), formatCase(IDS[0]!, 'OK'), formatCase(IDS[0]!, 'MAYBE', REC)];
    for (const line of bad) {
      const p = parseBoot([formatBegin(K, 4, 0), line, ...batch().slice(2)], IDS, 0);
      assert.equal(status(p.cases.get(IDS[0])), 'ERROR', line);
      assert.ok(p.untrusted, line);
    }
  });

  it('makes an unexpected id an ERROR for the expected case', () => {
    const lines = [
      formatBegin(K, 4, 0),
      formatCase(IDS[0]!, 'OK', REC),
      formatCase('t.other/q=1', 'OK', REC), // not in this kernel
      formatCase(IDS[2]!, 'OK', REC),
      formatCase(IDS[3]!, 'OK', REC),
      formatEnd(),
    ];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(status(p.cases.get(IDS[0])), 'OK');
    assert.equal(status(p.cases.get(IDS[1])), 'ERROR');
    assert.equal((p.cases.get(IDS[1]) as { reason: string }).reason, 'protocol: got line for t.other/q=1 while expecting t.x/a=2');
    assert.equal(p.cases.get(IDS[2]), NOT_REACHED);
  });

  it('a line for a later case is never credited to it: the expected case is ERROR, the rest runs again', () => {
    const lines = [
      formatBegin(K, 4, 0),
      formatCase(IDS[0]!, 'OK', REC),
      formatCase(IDS[2]!, 'OK', REC),
      formatCase(IDS[3]!, 'OK', REC),
      formatEnd(),
    ];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(status(p.cases.get(IDS[0])), 'OK');
    assert.deepEqual(p.cases.get(IDS[1]), { status: 'ERROR', reason: 'protocol: got line for t.x/a=3 while expecting t.x/a=2' });
    assert.equal(p.cases.get(IDS[2]), NOT_REACHED);
    assert.equal(p.cases.get(IDS[3]), NOT_REACHED);
    assert.equal(p.firstUnfinished, 2);
    assert.equal(p.ended, false);
  });

  it('a repeated line makes the repeated case ERROR; the expected one runs again in a new boot', () => {
    const lines = [formatBegin(K, 4, 0), formatCase(IDS[0]!, 'OK', REC), formatCase(IDS[0]!, 'OK', REC), formatCase(IDS[1]!, 'OK', REC)];
    const p = parseBoot(lines, IDS, 0);
    assert.equal((p.cases.get(IDS[0]) as { reason: string }).reason, 'protocol: got a second line for t.x/a=1 while expecting t.x/a=2');
    assert.equal(p.cases.get(IDS[1]), NOT_REACHED);
    assert.equal(p.firstUnfinished, 1);
  });

  it('after the last case, only END is trusted', () => {
    const stray = parseBoot([...batch().slice(0, 5), formatCase('t.other/q=1', 'OK', REC), formatEnd()], IDS, 0);
    assert.equal((stray.cases.get(IDS[3]) as { reason: string }).reason, 'protocol: got line for t.other/q=1 while expecting END');
    const again = parseBoot([...batch().slice(0, 5), formatCase(IDS[1]!, 'OK', REC), formatEnd()], IDS, 0);
    assert.equal(status(again.cases.get(IDS[1])), 'ERROR');
    assert.equal(again.firstUnfinished, -1);
  });

  it('every case with its line but no END: the last case is set back (noEnd) for the scheduler to charge', () => {
    const p = parseBoot(batch().slice(0, 5), IDS, 0);
    assert.equal(p.noEnd, true);
    assert.equal(p.firstUnfinished, 3);
    assert.equal(p.cases.get(IDS[3]), NOT_REACHED);
    assert.equal(status(p.cases.get(IDS[2])), 'OK');
  });

  it('a line longer than MAX_LINE_BYTES stops the parse without crediting or charging (overlong)', () => {
    const p = parseBoot([...batch().slice(0, 2), 'x'.repeat(MAX_LINE_BYTES + 1), ...batch().slice(2)], IDS, 0);
    assert.match(p.overlong ?? '', /longer than 1024 bytes while expecting t\.x\/a=2/);
    assert.equal(p.firstUnfinished, 1);
    assert.equal(p.untrusted, undefined);
  });

  it('keeps noise lines, strips \\r, and splits noise from a line that ends in ours', () => {
    const b = batch();
    const lines = ['SeaBIOS (version 1.16)\r', '\r', b[0]! + '\r', `\x1b[2J${b[1]}\r`, b[2]!, 'Booting...', ...b.slice(3)];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(p.ended, true);
    for (const id of IDS) assert.equal(status(p.cases.get(id)), 'OK');
    assert.deepEqual(p.noise, ['SeaBIOS (version 1.16)', '\x1b[2J', 'Booting...']);
  });

  it('recovers two lines run together when a newline was lost', () => {
    const b = batch();
    const lines = [b[0]!, b[1]! + b[2]!, ...b.slice(3)];
    const p = parseBoot(lines, IDS, 0);
    for (const id of IDS) assert.equal(status(p.cases.get(id)), 'OK');
  });

  it('makes every case ERROR when BEGIN names another kernel, count or start', () => {
    for (const begin of [formatBegin('t.y#0', 4, 0), formatBegin(K, 5, 0), formatBegin(K, 4, 1)]) {
      const lines = [begin, ...batch().slice(1)];
      const p = parseBoot(lines, IDS, 0, { kernelId: K });
      assert.ok(p.beginError, begin);
      for (const id of IDS) assert.equal(status(p.cases.get(id)), 'ERROR', begin);
      assert.equal(p.firstUnfinished, -1);
    }
  });

  it('an END before all cases is an ERROR for the expected case; the others run again', () => {
    const lines = [...batch().slice(0, 3), formatEnd()];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(p.ended, false);
    assert.deepEqual(p.cases.get(IDS[2]), { status: 'ERROR', reason: 'protocol: got END while expecting t.x/a=3' });
    assert.equal(p.firstUnfinished, 3);
  });

  it('a second BEGIN means the machine restarted', () => {
    const lines = [...batch().slice(0, 2), formatBegin(K, 4, 0), formatCase(IDS[0]!, 'OK', REC)];
    const p = parseBoot(lines, IDS, 0);
    assert.equal(p.restarted, true);
    assert.equal(p.firstUnfinished, 1);
    assert.equal(status(p.cases.get(IDS[0])), 'OK');
  });

  it('with end=, cases after it are not part of the boot', () => {
    const p = parseBoot(batch(0, 2), IDS, 0, { end: 2 });
    assert.deepEqual([...p.cases.keys()], IDS.slice(0, 2));
    assert.equal(p.firstUnfinished, -1);
  });

  it('isValidLine: a protocol line with its CRC, after noise too; nothing else', () => {
    assert.equal(isValidLine(formatEnd()), true);
    assert.equal(isValidLine(`noise ${formatEnd()}\r`), true);
    assert.equal(isValidLine(corrupt(formatCase(IDS[0]!, 'OK', REC), 20)), false);
    assert.equal(isValidLine('SVMCONF END'), false);
    assert.equal(isValidLine('plain noise'), false);
  });

  it('splitSerial drops CR before LF and keeps a last partial line', () => {
    assert.deepEqual(splitSerial('a\r\nb\n\nc'), ['a', 'b', '', 'c']);
    assert.deepEqual(splitSerial('a\n'), ['a']);
  });
});
