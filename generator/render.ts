// Render templates and the runtime to assembly with Handlebars (strict, no HTML escaping).
//
// Every source line carries a marker comment ` #@<source>:<line>` through rendering, so an
// assembler error on a rendered line can be traced back to the template (or partial) file and
// line it came from (see sourceOf). `#` starts a comment in GNU as for x86, so markers are inert.

import Handlebars from 'handlebars';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { Case, Template } from '../core/types.ts';
import { TemplateError } from './errors.ts';

const MARK = '#@';
const MARK_RE = /\s*#@(\d+):(\d+)/;
const MARK_RE_ALL = /\s*#@\d+:\d+/g;

export interface SourceRef {
  file: string;
  line: number;
}

/** The helpers templates may use, beside Handlebars' own (if, each, with, …). */
const HELPERS: Record<string, (...args: unknown[]) => unknown> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  and: (...args) => args.slice(0, -1).every(Boolean),
  or: (...args) => args.slice(0, -1).some(Boolean),
  not: (a) => !a,
  /** (in value "a" "b" …): value is one of the listed strings */
  in: (v, ...rest) => rest.slice(0, -1).includes(v),
};

/** What renderCase puts in a case's context beside its matrix parameters. */
export const CONTEXT_KEYS = ['case', 'template'] as const;

function ownContext(c: Case, index: number): Record<(typeof CONTEXT_KEYS)[number], object> {
  return { case: { id: c.id, index }, template: { id: c.template.id } };
}

/**
 * Names a matrix parameter cannot have: the context's own keys (a parameter would be overwritten
 * by them) and the helpers' names (`{{eq}}` calls the helper, never reads the parameter).
 */
export function reservedName(name: string): { kind: 'context' | 'helper' } | undefined {
  if ((CONTEXT_KEYS as readonly string[]).includes(name)) return { kind: 'context' };
  if (Object.hasOwn(HELPERS, name) || Object.hasOwn(Handlebars.helpers, name)) return { kind: 'helper' };
  return undefined;
}

/** A Handlebars environment with the runtime partials and the helpers templates may use. */
export class Renderer {
  private readonly hb = Handlebars.create();
  /** Source files that markers point at, by index. */
  readonly sources: string[] = [];
  private readonly partialFiles = new Map<string, string>();

  constructor() {
    for (const [name, fn] of Object.entries(HELPERS)) this.hb.registerHelper(name, fn);
  }

  sourceIndex(file: string): number {
    const i = this.sources.indexOf(file);
    if (i >= 0) return i;
    this.sources.push(file);
    return this.sources.length - 1;
  }

  /**
   * Append a marker to every line. Lines inside a multi-line `{{…}}` get none (a marker there
   * would change the expression); they are rare and their error lines still point nearby.
   */
  annotate(file: string, text: string, firstLine: number): string {
    const src = this.sourceIndex(file);
    let depth = 0;
    return text
      .split('\n')
      .map((line, i) => {
        const opens = (line.match(/\{\{/g) ?? []).length;
        const closes = (line.match(/\}\}/g) ?? []).length;
        const inside = depth > 0;
        depth += opens - closes;
        if (inside || depth > 0 || line.trim() === '') return line;
        return `${line} ${MARK}${src}:${firstLine + i}`;
      })
      .join('\n');
  }

  /** Register every `*.S.hbs` in `dir` as a partial named by its basename. */
  async addPartialDir(dir: string, displayRoot: string): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.S.hbs')).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const file = join(dir, name);
      const rel = relative(displayRoot, file);
      const display = rel && !rel.startsWith('..') ? rel : file;
      const partial = basename(name, '.S.hbs');
      const prior = this.partialFiles.get(partial);
      if (prior) throw new TemplateError(display, 1, `partial \`${partial}\` is already defined by ${prior}`);
      this.partialFiles.set(partial, display);
      const annotated = this.annotate(display, await readFile(file, 'utf8'), 1);
      // a syntax error of a partial names the partial's file, not the template that calls it
      try {
        Handlebars.parse(annotated);
      } catch (e) {
        throw handlebarsError(display, annotated, 1, e as Error);
      }
      this.hb.registerPartial(partial, annotated);
    }
  }

  /** Render text that came from `file` (already annotated) with `context`; errors name the file. */
  renderAnnotated(file: string, annotated: string, context: object, firstLine: number): string {
    let out: string;
    try {
      // parse first: a syntax error is the template's, even when a partial it calls is broken too
      Handlebars.parse(annotated);
    } catch (e) {
      throw handlebarsError(file, annotated, firstLine, e as Error);
    }
    try {
      out = this.hb.compile(annotated, { strict: true, noEscape: true, preventIndent: true })(context);
    } catch (e) {
      throw handlebarsError(file, annotated, firstLine, e as Error);
    }
    return out;
  }

  renderPartial(name: string, context: object): string {
    const file = this.partialFiles.get(name);
    if (!file) throw new Error(`no runtime partial \`${name}\` (looked in templates/partials)`);
    return this.renderAnnotated(file, `{{> ${name}}}`, context, 1);
  }

  renderCase(c: Case, index: number): string {
    const t: Template = c.template;
    // the template's parameter names never collide with the own keys (generator/template.ts refuses them)
    const context = { ...c.params, ...ownContext(c, index) };
    return this.renderAnnotated(t.displayPath, this.annotate(t.displayPath, t.body, t.bodyLine), context, t.bodyLine);
  }

  /** Where a rendered line came from, by its marker. */
  sourceOf(renderedLine: string): SourceRef | undefined {
    const m = MARK_RE.exec(renderedLine);
    if (!m) return undefined;
    const file = this.sources[Number(m[1])];
    return file === undefined ? undefined : { file, line: Number(m[2]) };
  }
}

/** A block helper `{{#name …}}` (or `{{^name …}}`) that no `{{/name}}` closes, with its 1-based line. */
export function unclosedBlock(text: string): { name: string; line: number } | undefined {
  // comments may hold braces; blank them, keeping their newlines so lines still count right
  const plain = text.replace(/\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}/g, (c) => c.replace(/[^\n]/g, ' '));
  const open: Array<{ name: string; line: number }> = [];
  for (const m of plain.matchAll(/\{\{~?\s*([#^/])\s*>?\s*([^\s}~]+)/g)) {
    const line = plain.slice(0, m.index).split('\n').length;
    if (m[1] === '/') {
      const i = open.map((o) => o.name).lastIndexOf(m[2]!);
      if (i >= 0) open.splice(i);
    } else open.push({ name: m[2]!, line });
  }
  return open.at(-1);
}

/**
 * A Handlebars error as a TemplateError at the right line: a parse error that ran into the end of
 * the text points at the block left open; the whole message (its excerpt and what the parser
 * expected) follows, without the source markers.
 */
function handlebarsError(file: string, annotated: string, firstLine: number, e: Error): TemplateError {
  // the parser's excerpt and caret, from the text as the user wrote it (same lines, no markers)
  let raw = e.message;
  if (raw.startsWith('Parse error')) {
    try {
      Handlebars.parse(stripMarkers(annotated));
    } catch (clean) {
      raw = (clean as Error).message;
    }
  }
  // Handlebars counts lines from the start of the text it parsed: give them as lines of the file
  const msg = stripMarkers(raw).replace(/^Parse error on line (\d+):/, (_all, n: string) => `Parse error on line ${firstLine + Number(n) - 1}:`);
  const [head = '', ...rest] = msg.split('\n');
  const context = rest.length ? rest.map((l) => `  ${l}`).join('\n') : undefined;
  const parse = /^Parse error on line (\d+):/.exec(head);
  if (parse) {
    const open = /got 'EOF'/.test(msg) ? unclosedBlock(annotated) : undefined;
    if (open) {
      return new TemplateError(file, firstLine + open.line - 1, `template: \`{{#${open.name}}}\` is never closed (no \`{{/${open.name}}}\` before the end of the file); Handlebars: ${head}`, context);
    }
    return new TemplateError(file, firstLine + Number(parse[1]) - 1, `template: ${head}`, context);
  }
  // other errors give their position as "- L:C" relative to the text compiled
  const m = /- (\d+):(\d+)/.exec(head) ?? /line (\d+)/i.exec(head);
  return new TemplateError(file, m ? firstLine + Number(m[1]) - 1 : undefined, `template: ${head}`, context);
}

/** The line without its markers: what the user wrote, for error messages. */
export function stripMarkers(line: string): string {
  return line.replace(MARK_RE_ALL, '');
}
