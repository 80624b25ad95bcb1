// Refuse a case whose code holds an instruction the reference model does not execute.
//
// The assembler's listing gives, per source line, the offset and bytes it emitted; we rebuild the
// .text bytes of the case object with the code size (.code32/.code64) in force at each byte,
// decode them with the model's own decoder, and look every mnemonic up in the model's registry —
// the one list the model itself dispatches on. An error names the template line.

import { decodeOne } from '../model/decode.ts';
import { supportedMnemonics } from '../model/isa/index.ts';
import { TemplateError } from './errors.ts';
import { stripMarkers, type Renderer } from './render.ts';

interface CodeByte {
  value: number;
  bits: 16 | 32 | 64;
  /** Line of the rendered source that emitted it. */
  line: number;
}

/** GNU as listing columns: line number, a 4-digit offset (blank on continuations), up to 8 hex digits of bytes. */
const LISTING_LINE = /^ *(\d+) ([0-9a-f]{4}| {4}) ([0-9A-F]*)/;

/** The .text bytes of a listing, each with its code size and source line. */
export function textBytes(listing: string, sourceLines: readonly string[]): CodeByte[] {
  const out: CodeByte[] = [];
  let section = '.text';
  let bits: 16 | 32 | 64 = 64;
  let lastLine = -1;
  for (const raw of listing.split('\n')) {
    const m = LISTING_LINE.exec(raw);
    if (!m) continue;
    const line = Number(m[1]);
    if (line !== lastLine) {
      // directives are read from the source line itself (the listing may truncate it)
      const src = stripMarkers(sourceLines[line - 1] ?? '').replace(/#.*$/, '').trim();
      const sec = /^\.(text|data|bss)\b/.exec(src) ?? /^\.section\s+([^\s,]+)/.exec(src);
      if (sec) section = sec[1]!.startsWith('.') ? sec[1]! : `.${sec[1]}`;
      if (/^\.code32\b/.test(src)) bits = 32;
      if (/^\.code64\b/.test(src)) bits = 64;
      if (/^\.code16\b/.test(src)) bits = 16;
      lastLine = line;
    }
    if (section !== '.text' && !section.startsWith('.text.')) continue;
    const hex = m[3] ?? '';
    for (let i = 0; i + 1 < hex.length; i += 2) out.push({ value: parseInt(hex.slice(i, i + 2), 16), bits, line });
  }
  return out;
}

/** Throw a TemplateError at the first instruction of `source` the model cannot execute. */
export function checkModelInstructions(what: string, source: string, listing: string, renderer: Renderer): void {
  const supported = new Set(supportedMnemonics());
  const lines = source.split('\n');
  const bytes = textBytes(listing, lines);
  let i = 0;
  while (i < bytes.length) {
    const bits = bytes[i]!.bits;
    const window: number[] = [];
    for (let j = i; j < bytes.length && j < i + 15 && bytes[j]!.bits === bits; j++) window.push(bytes[j]!.value);
    let mnemonic: string;
    let length: number;
    try {
      const insn = decodeOne(Uint8Array.from(window), 0n, bits);
      mnemonic = insn.mnemonic;
      length = Math.max(1, insn.length);
    } catch {
      mnemonic = 'INVALID';
      length = 1;
    }
    if (!supported.has(mnemonic)) {
      const line = bytes[i]!.line;
      const rendered = lines[line - 1] ?? '';
      const ref = renderer.sourceOf(rendered);
      const detail = `model: unsupported instruction ${mnemonic.toLowerCase()} (the reference model does not execute it, so no template may use it)`;
      const context = `  rendered for ${what}, line ${line}:\n    ${stripMarkers(rendered).trim()}`;
      throw new TemplateError(ref?.file ?? what, ref?.line ?? line, detail, context);
    }
    i += length;
  }
}
