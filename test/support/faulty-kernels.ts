// Kernels that break the serial protocol on purpose (issue 14's faults), as templates written into a
// folder of their own: each prints, through the runtime's own serial routines
// (templates/partials/serial.S.hbs line_begin, puts, line_end, putc), what a kernel whose RIP went
// astray might print. The specs of the runner's trust rules (test/trust-runner.spec.ts) run them on
// every backend that can run here.

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A template: `bodies` maps a value of the `what` parameter to its case body (assembly). */
function template(id: string, whats: string[], bodies: Record<string, string>, checks: string): string {
  const fm = [
    '---',
    `id: ${id}`,
    `title: A kernel that breaks the protocol (${id})`,
    'checks: |',
    `  ${checks}`,
    'matrix:',
    `  what: [${whats.join(', ')}]`,
    'record:',
    '  - { name: marker, type: u64, doc: "0x5356 for a case that ran its own body" }',
    '---',
  ];
  const parts = Object.entries(bodies).map(([what, body]) => `{{#if (eq what "${what}")}}\n${body}\n{{/if}}`);
  return `${fm.join('\n')}\n${parts.join('\n')}\n`;
}

/** The body of a case that behaves: its marker, then CASE_OK. */
const GOOD = '\tREC_IMM\tmarker, 0x5356\n\tCASE_OK';
/** Print `text` as one protocol line (the runtime adds `SVMCONF ` and the CRC). */
const LINE = (label: string, text: string): string =>
  `\tcall\tline_begin\n\tlea\t${label}(%rip), %rsi\n\tcall\tputs\n\tcall\tline_end\n\t.section .rodata\n${label}:\t.asciz "${text}"\n\t.text`;
const HANG = '1:\tjmp\t1b';

/** The record a GOOD case gives (marker 0x5356, little-endian u64). */
export const GOOD_RECORD = '5653000000000000';

export const FAULTY: Record<string, string> = {
  // 1: a case that prints its successor's line (with a record the successor would never give)
  'trust.forge': template('trust.forge', ['forge', 'victim', 'after'], {
    forge: `${LINE('forged_victim', 'CASE trust.forge/what=victim OK dead0000dead0000')}\n${GOOD}`,
    victim: GOOD,
    after: GOOD,
  }, 'forge prints the line of victim before its own.'),
  // 1: the whole batch forged: every case prints the next one's line
  'trust.allforge': template('trust.allforge', ['a', 'b', 'c'], {
    a: `${LINE('forged_b', 'CASE trust.allforge/what=b OK 5653000000000000')}\n${GOOD}`,
    b: `${LINE('forged_c', 'CASE trust.allforge/what=c OK 5653000000000000')}\n${GOOD}`,
    c: `${LINE('forged_a', 'CASE trust.allforge/what=a OK 5653000000000000')}\n${GOOD}`,
  }, 'every case prints the line of the next one.'),
  // 2: the last case prints its own line, then hangs (END never comes)
  'trust.noend': template('trust.noend', ['ok', 'last'], {
    ok: GOOD,
    last: `${LINE('own_last', 'CASE trust.noend/what=last OK 5653000000000000')}\n${HANG}`,
  }, 'last prints its own line and hangs before END.'),
  // 2: the last case prints its own line, then leaves the machine without END
  'trust.noendexit': template('trust.noendexit', ['ok', 'last'], {
    ok: GOOD,
    last: `${LINE('own_last', 'CASE trust.noendexit/what=last OK 5653000000000000')}\n\tjmp\trt_exit`,
  }, 'last prints its own line and leaves without END.'),
  // 3: a case that prints noise lines for ever
  'trust.flood': template('trust.flood', ['ok', 'flood', 'after'], {
    ok: GOOD,
    flood: '\t.section .rodata\nflood_text:\t.asciz "flood\\n"\n\t.text\n2:\tlea\tflood_text(%rip), %rsi\n\tcall\tputs\n\tjmp\t2b',
    after: GOOD,
  }, 'flood prints a noise line for ever.'),
  // 3: a case that prints for ever without a newline
  'trust.floodraw': template('trust.floodraw', ['ok', 'flood', 'after'], {
    ok: GOOD,
    flood: '2:\tmov\t$0x78, %edi\n\tcall\tputc\n\tjmp\t2b',
    after: GOOD,
  }, 'flood prints x for ever, no newline.'),
  // 3: a case that prints its own valid line for ever
  'trust.vflood': template('trust.vflood', ['ok', 'flood', 'after'], {
    ok: GOOD,
    flood: `2:\n${LINE('own_flood', 'CASE trust.vflood/what=flood OK 5653000000000000')}\n\tjmp\t2b`,
    after: GOOD,
  }, 'flood prints its own valid line for ever.'),
  // 4: a case whose line has a bad CRC, then hangs
  'trust.badcrc': template('trust.badcrc', ['ok', 'bad', 'after'], {
    ok: GOOD,
    bad: '\t.section .rodata\nbad_line:\t.asciz "SVMCONF CASE trust.badcrc/what=bad OK 5653000000000000 00000000\\n"\n\t.text\n\tlea\tbad_line(%rip), %rsi\n\tcall\tputs\n' + HANG,
    after: GOOD,
  }, 'bad prints its line with a wrong CRC, then hangs.'),
  // 5: a kernel that hangs in its first case (for the abort and orphan specs)
  'trust.hang': template('trust.hang', ['hang'], { hang: HANG }, 'hang spins for ever.'),
};

/** A folder holding the templates named (default: all of FAULTY). */
export async function faultyTemplates(names: readonly string[] = Object.keys(FAULTY)): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'svmconf-faulty-'));
  for (const n of names) await writeFile(join(dir, `${n.replace(/^trust\./, '')}.S.hbs`), FAULTY[n]!);
  return dir;
}
