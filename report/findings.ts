// The findings register (docs/findings.md, rendered from expected/findings.yaml): what svmconf
// hands to an upstream project. A finding is one behaviour of one implementation, told once, with
// the registry entries that pin it case by case (expected/deviations.yaml). The register adds what
// the entries do not say: which project and component, whether the behaviour is a bug, an
// artefact of running on emulated hardware, or fixed upstream, and what a developer needs to
// act on it. Everything countable — cases, versions, fields, observed values — is read from the
// entries, never typed into the register (report/findings.ts renderFindings).
//
// Loading checks that every entry named exists and belongs to one finding only, and that every
// entry of the registry belongs to a finding: a lead is triaged, or the register says it is not.

import { readFile } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Deviation } from './deviations.ts';
import { evidenceLines, ID_RE, refuseValueComments } from './deviations.ts';
import { shortVersion } from './versions.ts';

export class FindingError extends Error {
  constructor(readonly file: string, readonly line: number | undefined, readonly detail: string) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${detail}`);
    this.name = 'FindingError';
  }
}

/**
 * What a finding is for its upstream:
 *   bug         the implementation departs from the manual, still so in the newest version checked
 *   fixed       it did, and a later version checked no longer does (the entries' versions.fixed say where)
 *   artefact    not the component's own error: it follows from the hardware it runs on (KVM on an
 *               emulated CPU without NRIPS), shown with the same case on that hardware alone
 *   limitation  the component knowingly cannot do what the manual asks in this situation (its code says so)
 */
export type FindingStatus = 'bug' | 'fixed' | 'artefact' | 'limitation';
export const FINDING_STATUSES: readonly FindingStatus[] = ['bug', 'fixed', 'artefact', 'limitation'];

export interface Finding {
  id: string;
  title: string;
  /** The project and its part: `QEMU target/i386/tcg`, `Bochs cpu/svm.cc`, `KVM arch/x86/kvm/svm/nested.c`. */
  component: string;
  status: FindingStatus;
  /** Upstream: reported where (a thread or issue), or known there already; empty: not reported. */
  upstream: string[];
  /** What the guest does, what the manual says (with the section), what happens instead: prose. */
  what: string;
  /** The registry entries that pin it (their cases, fields, values, versions and sources). */
  deviations: string[];
  file: string;
  line: number;
}

const KEYS = ['id', 'title', 'component', 'status', 'upstream', 'what', 'deviations'] as const;

/** Parse and check the register against the registry. */
export function parseFindings(text: string, registry: readonly Deviation[], file = 'expected/findings.yaml', opts: { complete?: boolean } = {}): Finding[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true, lineCounter: lc });
  if (doc.errors.length) throw new FindingError(file, doc.errors[0]!.linePos?.[0]?.line, `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  refuseValueComments(doc, lc, (line, detail) => new FindingError(file, line, detail));
  if (doc.contents === null) return [];
  if (!isSeq(doc.contents)) throw new FindingError(file, 1, 'the register is a list of findings (`- id: …`)');
  const byId = new Map(registry.map((d) => [d.id, d] as const));
  const owner = new Map<string, string>();
  const out: Finding[] = [];
  for (const item of doc.contents.items) {
    const line = lc.linePos(item.range?.[0] ?? 0).line;
    const fail = (detail: string): never => {
      throw new FindingError(file, line, detail);
    };
    if (!isMap(item)) fail('a finding is a map');
    const o = (item as { toJSON(): Record<string, unknown> }).toJSON();
    for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) fail(`unknown key \`${k}\` (${KEYS.join(', ')})`);
    for (const k of ['id', 'title', 'component', 'status', 'what', 'deviations']) if (o[k] === undefined) fail(`needs \`${k}\``);
    const str = (k: string): string => (typeof o[k] === 'string' && (o[k] as string).trim() !== '' ? (o[k] as string).trim() : fail(`\`${k}\` must be text`));
    const list = (k: string): string[] => (o[k] === undefined ? [] : Array.isArray(o[k]) && (o[k] as unknown[]).every((x) => typeof x === 'string') ? (o[k] as string[]) : fail(`\`${k}\` must be a list of text`));
    const id = str('id');
    if (!ID_RE.test(id)) fail(`id \`${id}\` must be kebab-case`);
    if (out.some((f) => f.id === id)) fail(`id \`${id}\` is used twice`);
    const status = str('status') as FindingStatus;
    if (!FINDING_STATUSES.includes(status)) fail(`status \`${status}\` is not one of ${FINDING_STATUSES.join(', ')}`);
    const deviations = list('deviations');
    if (deviations.length === 0) fail('needs at least one registry entry in `deviations`: the cases and values come from there');
    for (const d of deviations) {
      if (!byId.has(d)) fail(`\`${d}\` is not an entry of the deviation registry`);
      const prev = owner.get(d);
      if (prev !== undefined) fail(`\`${d}\` already belongs to finding \`${prev}\``);
      owner.set(d, id);
    }
    // a finding called fixed must have entries that say where; one called a bug must still show somewhere
    const entries = deviations.map((d) => byId.get(d)!);
    if (status === 'fixed' && !entries.every((e) => e.versions.fixed)) fail(`status fixed, but ${entries.filter((e) => !e.versions.fixed).map((e) => `\`${e.id}\``).join(', ')} has no versions.fixed`);
    if (status === 'bug' && entries.every((e) => e.versions.fixed)) fail('status bug, but every entry has versions.fixed: call it fixed');
    out.push({ id, title: str('title'), component: str('component'), status, upstream: list('upstream'), what: str('what'), deviations, file, line });
  }
  const orphans = registry.filter((d) => !owner.has(d.id)).map((d) => d.id);
  // a run with registries of its own (--deviations, a template folder's) may have entries in no finding
  if (orphans.length && opts.complete !== false) throw new FindingError(file, undefined, `registry entries in no finding (every lead is triaged into one): ${orphans.join(', ')}`);
  return out;
}

export async function loadFindings(path: string, registry: readonly Deviation[], display = 'expected/findings.yaml', opts: { complete?: boolean } = {}): Promise<Finding[]> {
  return parseFindings(await readFile(path, 'utf8'), registry, display, opts);
}

/** Mark each entry with its finding (Deviation.finding), for the matrix's links. */
export function linkFindings(registry: Deviation[], findings: readonly Finding[]): Deviation[] {
  const of = findingOf(findings);
  for (const d of registry) {
    const f = of.get(d.id);
    if (f !== undefined) d.finding = f;
  }
  return registry;
}

/** Where a finding is described, for links in the matrix. */
export const findingLink = (id: string): string => `docs/findings.md#${id}`;

/** Registry entry id → its finding's id. */
export function findingOf(findings: readonly Finding[]): Map<string, string> {
  return new Map(findings.flatMap((f) => f.deviations.map((d) => [d, f.id] as const)));
}

const STATUS_TEXT: Readonly<Record<FindingStatus, string>> = {
  bug: 'bug, present in the newest version checked',
  fixed: 'fixed upstream',
  artefact: 'artefact of the emulated hardware, not the component\'s own error',
  limitation: 'known limitation of the component',
};

const code = (s: string): string => `\`${s}\``;
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** The versions a finding was seen on and where it was fixed, from its entries. */
export function findingVersions(entries: readonly Deviation[]): { seen: string[]; fixed: string[]; fixedIn: string[] } {
  const seen = [...new Set(entries.flatMap((e) => e.versions.checked.map(shortVersion)))];
  const fixed = [...new Set(entries.flatMap((e) => (e.versions.fixed ? [`${e.versions.fixed.in} (${e.versions.fixed.by})`] : [])))];
  const fixedIn = [...new Set(entries.flatMap((e) => (e.versions.fixed ? [e.versions.fixed.in] : [])))];
  return { seen, fixed, fixedIn };
}

/** docs/findings.md: a table of every finding, then each with its entries' cases, values and evidence. */
export function renderFindings(findings: readonly Finding[], registry: readonly Deviation[], notes = ''): string {
  const byId = new Map(registry.map((d) => [d.id, d] as const));
  const L: string[] = [
    '# Findings',
    '',
    '<!-- generated by `svmconf findings` from expected/findings.yaml, expected/deviations.yaml and expected/findings-notes.md: edit those, then run it -->',
    '',
    'What svmconf found in each implementation, one behaviour per finding, for the project that can act on it.',
    'Each finding names the registry entries that pin it case by case (expected/deviations.yaml): the cases,',
    'the record fields, the values observed, the versions checked and the source lines all come from there.',
    '`svmconf repro <case> --backend <column>` writes a reproducer for any of its cases (docs/repro.md).',
    '',
  ];
  const counts = new Map<string, Map<FindingStatus, number>>();
  for (const f of findings) {
    const project = f.component.split(' ')[0]!;
    const m = counts.get(project) ?? new Map<FindingStatus, number>();
    m.set(f.status, (m.get(f.status) ?? 0) + 1);
    counts.set(project, m);
  }
  L.push('| project | ' + FINDING_STATUSES.join(' | ') + ' |', '|---|' + FINDING_STATUSES.map(() => '---:').join('|') + '|');
  for (const [p, m] of counts) L.push(`| ${p} | ${FINDING_STATUSES.map((s) => String(m.get(s) ?? 0)).join(' | ')} |`);
  L.push('');
  L.push('| finding | component | status | case patterns | seen on | fixed in |', '|---|---|---|---:|---|---|');
  for (const f of findings) {
    const entries = f.deviations.map((d) => byId.get(d)!);
    const v = findingVersions(entries);
    const cases = new Set(entries.flatMap((e) => e.cases)).size;
    L.push(`| [${f.title}](#${f.id}) | ${f.component} | ${f.status} | ${cases} | ${v.seen.join(', ')} | ${v.fixedIn.join(', ') || '—'} |`);
  }
  L.push('');
  for (const f of findings) {
    const entries = f.deviations.map((d) => byId.get(d)!);
    const v = findingVersions(entries);
    L.push(`<a id="${f.id}"></a>`, `## ${f.title}`, '');
    L.push(`- **Id:** ${code(f.id)}`, `- **Component:** ${f.component}`, `- **Status:** ${f.status} (${STATUS_TEXT[f.status]})`);
    L.push(`- **Seen on:** ${v.seen.join(', ')}`);
    if (v.fixed.length) L.push(`- **Fixed in:** ${v.fixed.join('; ')}`);
    L.push(`- **Upstream:** ${f.upstream.length ? f.upstream.join('; ') : 'not reported yet'}`);
    L.push('', oneLine(f.what), '');
    for (const e of entries) {
      L.push(`### ${code(e.id)} (expected/deviations.yaml:${e.line})`, '');
      L.push(`- **Cases:** ${e.cases.map(code).join(', ')}`);
      L.push(`- **Fields and observed values:** ${e.fields.map((x) => (e.observed[x] ? `${x} = ${code(e.observed[x]!.text)}` : `${x} (not pinned)`)).join(', ')}`);
      L.push(`- **Expected:** ${oneLine(e.expected)}`);
      L.push(`- **Observed:** ${oneLine(e.summary)}`);
      L.push(`- **Versions:** ${e.versions.range}; checked on ${e.versions.checked.map(shortVersion).join(', ')}${e.versions.fixed ? `; fixed in ${e.versions.fixed.in} (${e.versions.fixed.by})` : ''}`);
      for (const l of evidenceLines(e)) L.push(`- ${oneLine(l)}`);
      L.push('');
    }
  }
  // leads and routes that are not findings (yet): expected/findings-notes.md, as written
  if (notes.trim() !== '') L.push(notes.trim(), '');
  return `${L.join('\n').replace(/\n+$/, '')}\n`;
}
