// Load a template file: YAML front matter between `---` lines, then the assembly body.
// The front matter is validated field by field; every error names the file and the line.

import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import {
  DEFINED_WHEN, FEATURES, FIELD_ROLES, type DefinedWhen, type Feature, type FieldDecode, type FieldRole, type FieldType, type RecordField, type Requirement, type Template,
} from '../core/types.ts';
import { RECORD_MAX } from './layout.ts';
import { TemplateError } from './errors.ts';
import { CONTEXT_KEYS, reservedName } from './render.ts';
import { expandTemplate } from './matrix.ts';

const FIELD_SIZES: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };
const DECODES: readonly FieldDecode[] = ['hex', 'vector', 'exitcode', 'eventinfo', 'rflags', 'offset', 'selector', 'count', 'bool'];
const KNOWN_KEYS = ['id', 'title', 'checks', 'requires', 'feature_params', 'matrix', 'exclude', 'record'] as const;

/** Ids and parameter values go on protocol lines and into case ids: no spaces, no separators. */
const ID_RE = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const NAME_RE = /^[a-z][a-z0-9_]*$/;
const VALUE_RE = /^[A-Za-z0-9_.+-]+$/;

export function splitFrontMatter(file: string, text: string): { front: string; frontLine: number; body: string; bodyLine: number } {
  const lines = text.split('\n');
  if (lines[0]?.trimEnd() !== '---') throw new TemplateError(file, 1, 'a template starts with a `---` line opening its front matter');
  const close = lines.findIndex((l, i) => i > 0 && l.trimEnd() === '---');
  if (close < 0) throw new TemplateError(file, 1, 'front matter is not closed by a `---` line');
  return {
    front: lines.slice(1, close).join('\n'),
    frontLine: 2,
    body: lines.slice(close + 1).join('\n'),
    bodyLine: close + 2,
  };
}

class FrontMatter {
  constructor(readonly file: string, readonly doc: Document, readonly text: string, readonly firstLine: number) {}

  /** 1-based line in the template file of the node at `path` (or of the document). */
  lineOf(path: Array<string | number>): number {
    const node = path.length ? this.doc.getIn(path, true) : this.doc.contents;
    const range = (node as { range?: [number, number, number] } | undefined)?.range
      ?? (this.doc.getIn(path.slice(0, -1), true) as { range?: [number, number, number] } | undefined)?.range;
    if (!range) return this.firstLine;
    return this.firstLine + this.text.slice(0, range[0]).split('\n').length - 1;
  }

  /** 1-based line of the key of the map entry at `path` (where `name:` is written). */
  keyLineOf(path: Array<string | number>): number {
    const parent = this.doc.getIn(path.slice(0, -1), true);
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]) : undefined;
    const range = isScalar(pair?.key) ? pair.key.range : undefined;
    return range ? this.firstLine + this.text.slice(0, range[0]).split('\n').length - 1 : this.lineOf(path);
  }

  fail(path: Array<string | number>, detail: string): never {
    const where = path.length ? `front matter \`${path.join('.')}\`: ` : 'front matter: ';
    throw new TemplateError(this.file, this.lineOf(path), where + detail);
  }

  string(path: Array<string | number>, value: unknown, re?: RegExp, what?: string): string {
    if (typeof value !== 'string' || value.trim() === '') this.fail(path, 'must be a non-empty string');
    if (re && !re.test(value)) this.fail(path, `\`${value}\` is not ${what ?? `of the form ${re}`}`);
    return value;
  }

  list(path: Array<string | number>, value: unknown): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(path, 'must be a list');
    return value;
  }
}

function parseRequirement(fm: FrontMatter, path: Array<string | number>, raw: unknown): Requirement {
  const text = fm.string(path, raw);
  const present = !text.startsWith('!');
  const feature = (present ? text : text.slice(1)) as Feature;
  if (!FEATURES.includes(feature)) fm.fail(path, `unknown feature \`${text}\` (known: ${FEATURES.join(', ')}, or !feature for "must be absent")`);
  return { feature, present };
}

/** Keys of a record field in front matter. */
const FIELD_KEYS = ['name', 'type', 'doc', 'decode', 'role', 'defined_when'];

function parseRecord(fm: FrontMatter, raw: unknown): { fields: RecordField[]; size: number } {
  const items = fm.list(['record'], raw);
  if (items.length === 0) fm.fail(['record'], 'declare at least one record field');
  const fields: RecordField[] = [];
  let offset = 0;
  items.forEach((item, i) => {
    const path = ['record', i];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) fm.fail(path, 'a field is a map {name, type, doc, decode?}');
    const f = item as Record<string, unknown>;
    for (const k of Object.keys(f)) if (!FIELD_KEYS.includes(k)) fm.fail([...path, k], `unknown key \`${k}\` (known: ${FIELD_KEYS.join(', ')})`);
    const name = fm.string([...path, 'name'], f.name, NAME_RE, 'a lower-case name');
    if (fields.some((o) => o.name === name)) fm.fail([...path, 'name'], `field \`${name}\` declared twice`);
    const type = fm.string([...path, 'type'], f.type) as FieldType;
    if (!(type in FIELD_SIZES)) fm.fail([...path, 'type'], `\`${type}\` is not one of u8, u16, u32, u64`);
    const decode = (f.decode === undefined ? 'hex' : fm.string([...path, 'decode'], f.decode)) as FieldDecode;
    if (!DECODES.includes(decode)) fm.fail([...path, 'decode'], `\`${decode}\` is not one of ${DECODES.join(', ')}`);
    const doc = fm.string([...path, 'doc'], f.doc);
    const size = FIELD_SIZES[type];
    if (offset % size !== 0) fm.fail(path, `field \`${name}\` (${type}) would sit at offset ${offset}, not ${size}-byte aligned: reorder or pad`);
    const field: RecordField = { name, type, offset, size, decode, doc };
    if (f.role !== undefined) {
      const role = fm.string([...path, 'role'], f.role) as FieldRole;
      if (!FIELD_ROLES.includes(role)) fm.fail([...path, 'role'], `\`${role}\` is not one of ${FIELD_ROLES.join(', ')}`);
      // the masks read the exit code and EXITINTINFO of the case from these: one field each
      if ((role === 'exit_code' || role === 'exit_int_info') && fields.some((o) => o.role === role)) {
        fm.fail([...path, 'role'], `role \`${role}\` given to two fields (the masks read the case's ${role} from one)`);
      }
      field.role = role;
    }
    if (f.defined_when !== undefined) {
      const when = fm.string([...path, 'defined_when'], f.defined_when) as DefinedWhen;
      if (!DEFINED_WHEN.includes(when)) fm.fail([...path, 'defined_when'], `\`${when}\` is not one of ${DEFINED_WHEN.join(', ')}`);
      field.definedWhen = when;
    }
    fields.push(field);
    offset += size;
  });
  if (offset > RECORD_MAX) fm.fail(['record'], `record is ${offset} bytes, more than the runtime's ${RECORD_MAX}`);
  return { fields, size: offset };
}

function parseMatrix(fm: FrontMatter, raw: unknown): Template['matrix'] {
  if (raw === undefined) return [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fm.fail(['matrix'], 'must be a map from parameter name to a list of values');
  return Object.entries(raw as Record<string, unknown>).map(([name, values]) => {
    fm.string(['matrix', name], name, NAME_RE, 'a lower-case parameter name');
    const reserved = reservedName(name);
    if (reserved) {
      const why = reserved.kind === 'context'
        ? `the renderer puts ${CONTEXT_KEYS.map((k) => `\`${k}\``).join(' and ')} in every case's context (${CONTEXT_KEYS.map((k) => `{{${k}.id}}`).join(', ')}) and would overwrite it`
        : `\`${name}\` is a Handlebars helper, so \`{{${name}}}\` would call it instead of reading the parameter`;
      throw new TemplateError(fm.file, fm.keyLineOf(['matrix', name]), `front matter \`matrix.${name}\`: parameter name \`${name}\` is reserved: ${why}; rename the parameter`);
    }
    const list = fm.list(['matrix', name], values);
    if (list.length === 0) fm.fail(['matrix', name], 'needs at least one value');
    const strings = list.map((v, i) => fm.string(['matrix', name, i], v, VALUE_RE, 'a value without spaces, commas, `=` or `/`'));
    const dup = strings.find((v, i) => strings.indexOf(v) !== i);
    if (dup !== undefined) fm.fail(['matrix', name], `value \`${dup}\` listed twice`);
    return { name, values: strings };
  });
}

/**
 * `exclude:` — each item is a partial map of parameter values; a value may be one value or a list
 * of values (`{ ev: [intr, nmi], nrip: [equal, before] }`), and the item removes every case whose
 * parameters match one listed value of each key it names (the product of its lists).
 */
function parseExclude(fm: FrontMatter, raw: unknown, matrix: Template['matrix']): Template['exclude'] {
  return fm.list(['exclude'], raw).map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) fm.fail(['exclude', i], 'an exclusion is a map of parameter values');
    const entries = Object.entries(item as Record<string, unknown>);
    if (entries.length === 0) fm.fail(['exclude', i], 'an empty exclusion would exclude every case');
    return Object.fromEntries(entries.map(([k, v]) => {
      const p = matrix.find((m) => m.name === k);
      if (!p) return fm.fail(['exclude', i, k], `\`${k}\` is not a matrix parameter`);
      const listed = Array.isArray(v) ? v : [v];
      if (listed.length === 0) fm.fail(['exclude', i, k], 'an empty list of values would exclude no case');
      const values = listed.map((x, j) => {
        const at = Array.isArray(v) ? ['exclude', i, k, j] : ['exclude', i, k];
        const value = fm.string(at, x);
        if (!p.values.includes(value)) fm.fail(at, `\`${value}\` is not a value of \`${k}\` (${p.values.join(', ')})`);
        return value;
      });
      const dup = values.find((x, j) => values.indexOf(x) !== j);
      if (dup !== undefined) fm.fail(['exclude', i, k], `value \`${dup}\` listed twice`);
      return [k, values];
    }));
  });
}

/** Parse and validate a whole template file's text. Pure apart from its arguments. */
export function parseTemplate(file: string, displayPath: string, text: string): Template {
  const { front, frontLine, body, bodyLine } = splitFrontMatter(displayPath, text);
  // failsafe: every scalar stays the string it was written as (`0x20` stays `0x20`, `on` stays `on`)
  const doc = parseDocument(front, { schema: 'failsafe', prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = frontLine + (e.linePos?.[0]?.line ?? 1) - 1;
    throw new TemplateError(displayPath, line, `front matter is not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const fm = new FrontMatter(displayPath, doc, front, frontLine);
  // " #" after a plain value starts a YAML comment and silently cuts text ("... #UD" -> "..."):
  // a comment on a value's line is refused; whole-line comments are fine
  visit(doc, {
    Scalar(_key, node) {
      if (node.comment !== undefined && node.range) {
        const line = frontLine + front.slice(0, node.range[0]).split('\n').length - 1;
        throw new TemplateError(displayPath, line, `front matter: a \`#\` after this value starts a YAML comment ("#${node.comment}"), which cuts the text: quote the value`);
      }
    },
  });
  if (!isMap(doc.contents)) fm.fail([], 'must be a YAML map');
  const raw = doc.toJS() as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) fm.fail([key], `unknown key \`${key}\` (known: ${KNOWN_KEYS.join(', ')})`);
  }
  const id = fm.string(['id'], raw.id, ID_RE, 'a dotted lower-case id such as `svm.inject.softint`');
  const matrix = parseMatrix(fm, raw.matrix);
  const featureParams = fm.list(['feature_params'], raw.feature_params).map((v, i) => {
    const name = fm.string(['feature_params', i], v) as Feature;
    if (!FEATURES.includes(name)) fm.fail(['feature_params', i], `\`${name}\` is not a feature (${FEATURES.join(', ')})`);
    const p = matrix.find((m) => m.name === name);
    if (!p) return fm.fail(['feature_params', i], `feature parameter \`${name}\` must also be a matrix parameter`);
    const bad = p.values.find((x) => x !== 'on' && x !== 'off');
    if (bad !== undefined) fm.fail(['matrix', name], `feature parameter values are \`on\` and \`off\`, not \`${bad}\``);
    return name;
  });
  const record = parseRecord(fm, raw.record);
  // keep YAML scalar node types honest: `requires: svm` (not a list) is an easy slip
  const req = doc.get('requires', true);
  if (req !== undefined && !isSeq(req) && !isScalar(req)) fm.fail(['requires'], 'must be a list of features');
  const template: Template = {
    id,
    idLine: fm.lineOf(['id']),
    title: fm.string(['title'], raw.title),
    checks: fm.string(['checks'], raw.checks).trim(),
    file,
    displayPath,
    bodyLine,
    body,
    requires: fm.list(['requires'], raw.requires).map((r, i) => parseRequirement(fm, ['requires', i], r)),
    featureParams,
    matrix,
    exclude: parseExclude(fm, raw.exclude, matrix),
    record: record.fields,
    recordSize: record.size,
  };
  // a template whose exclusions leave nothing would vanish from the suite without a word
  if (template.exclude.length && expandTemplate(template).length === 0) {
    const product = matrix.reduce((n, p) => n * p.values.length, 1);
    throw new TemplateError(displayPath, fm.keyLineOf(['exclude']), `front matter \`exclude\`: the exclusions remove every case of the matrix (all ${product}): the template would have no case`);
  }
  return template;
}

export async function loadTemplate(file: string, displayPath: string): Promise<Template> {
  return parseTemplate(file, displayPath, await readFile(file, 'utf8'));
}
