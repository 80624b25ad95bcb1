// The text of a reproducer bundle (docs/repro.md): one case on one backend, as a folder someone
// without svmconf can run and read. Pure: suite/repro.ts gathers the case, the records, the
// comparison and the backend's command line, and this module turns them into the bundle's files —
// the shell script that boots the peer and compares its record with the one observed, the two
// records decoded field by field, the template's checks, and a report in the form a mailing list
// or an issue tracker takes.

import type { BackendInfo, CaseResult, RecordField } from '../core/types.ts';
import type { CaseComparison, FieldDiff } from './compare.ts';
import { CRASH_LAYOUT, decodeRecord, describeCrash, hex, parseHex, readLE } from './decode.ts';
import type { Deviation } from './deviations.ts';
import { evidenceLines } from './deviations.ts';
import { findingLink, type Finding } from './findings.ts';

// ---------------------------------------------------------------------------------------------
// Names

/** A case id as a folder name: `/` and `,` become `_`, anything but `[A-Za-z0-9._=+-]` too. */
export function sanitizeCaseId(id: string): string {
  return id.replace(/[^A-Za-z0-9._=+-]/g, '_');
}

/** The bundle's default folder name: `<sanitized case id>-<backend>` (docs/repro.md). */
export function bundleName(caseId: string, backend: string): string {
  return `${sanitizeCaseId(caseId)}-${backend}`;
}

/** The script's name: `run-<backend>.sh`. */
export const scriptName = (backend: string): string => `run-${backend}.sh`;

/** A word for a POSIX shell: as it is when it holds nothing the shell reads, else in single quotes. */
export function shq(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Words joined into a command line, each quoted as needed. */
export const shJoin = (words: readonly string[]): string => words.map(shq).join(' ');

// ---------------------------------------------------------------------------------------------
// What the renderers are given

/** The case as the bundle shows it (core/types.ts Case, without the generator's parts). */
export interface ReproCase {
  id: string;
  params: Record<string, string>;
  template: { id: string; title: string; checks: string; displayPath: string; record: RecordField[] };
}

/** How a pinned peer runs from a root of its packages: its launch with the root written `${PEER_ROOT}`. */
export interface PeerNote {
  /** The pin (`qemu@11.1`). */
  pin: string;
  /** Exact Debian versions it was observed with. */
  packages: Record<string, string>;
  /** runner/peers/launch.ts PeerLaunch: loader, its options, the binary and (QEMU) data dirs. */
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Where `svmconf peers` builds such a root (repository-relative), for the comment. */
  builtAt: string;
}

/** The backend's own command line, per kind of backend; paths are the bundle's file names. */
export type ReproRun =
  | { kind: 'qemu'; args: string[]; peer?: PeerNote }
  | { kind: 'bochs'; peer?: PeerNote }
  | { kind: 'kvm'; helperArgs: string[] }
  | {
    kind: 'kvm-tcg';
    qemuArgs: string[];
    helperArgs: string[];
    peer?: PeerNote;
    /** The QEMU the TCG host ran on (BackendInfo.emulator.version: `QEMU 7.2.22`). */
    qemuVersion: string;
    /** The TCG host's kernel: its release, and the Debian packages (`name=version`) the image was built from. */
    kernel: { release: string; debs: string[] };
  };

export interface ReproInput {
  case: ReproCase;
  /** The observed column (results.json BackendInfo). */
  backend: BackendInfo;
  /** The reference it is compared with (`model`, or `model@amd-10h` for bochs-phenom). */
  reference: BackendInfo;
  /** `QEMU 7.2.22 TCG`: who the report is about, for the Subject line. */
  component: string;
  observed: CaseResult;
  /** The reference's result; undefined when it has none. */
  expected: CaseResult | undefined;
  /** The case compared over the reference and the backend (report/compare.ts compareCase). */
  comparison: CaseComparison;
  /** The registry entries the comparison names (by id). */
  entries: Deviation[];
  /** The findings those entries belong to (expected/findings.yaml), what svmconf tells upstream. */
  findings: Finding[];
  /** `git rev-parse HEAD` of the svmconf that wrote the bundle, with `-dirty` when it had changes. */
  commit: string;
  /** Where the observed record comes from: `a run of svmconf repro` or a results.json path. */
  source: string;
  /** The sections of the repository's docs the checks cite, with their text (docs/svm-rules.md "…"). */
  docSections: Array<{ ref: string; text: string | undefined }>;
  run: ReproRun;
  /** Seconds the script's boot may take (`timeout`). */
  timeoutSeconds: number;
}

// ---------------------------------------------------------------------------------------------
// Citations

/**
 * The manual's sections a checks text cites: each `APM vol. N …` phrase up to the next `)`, `;`
 * or sentence end, in order of first appearance; and the repository's own docs by `docs/x.md
 * "Heading"`. Text only: what a reader looks up, not parsed further.
 */
export function citations(checks: string): { manual: string[]; docs: string[] } {
  const text = checks.replace(/\s+/g, ' ');
  const manual: string[] = [];
  for (const m of text.matchAll(/APM vol\. \d+(?:[^;)]*?)(?=[;)]|\. [A-Z]|\.$|$)/g)) {
    const c = m[0].replace(/[ ,:—-]+$/, '').trim();
    if (!manual.includes(c)) manual.push(c);
  }
  const docs: string[] = [];
  for (const m of text.matchAll(/docs\/[a-z0-9/-]+\.md "[^"]+"/g)) if (!docs.includes(m[0])) docs.push(m[0]);
  return { manual, docs };
}

/** The text of the section `heading` of a Markdown file: from its heading to the next of the same or a higher level. */
export function markdownSection(markdown: string, heading: string): string | undefined {
  const lines = markdown.split('\n');
  const at = lines.findIndex((l) => /^#{1,6} /.test(l) && l.replace(/^#+ /, '').trim() === heading);
  if (at < 0) return undefined;
  const level = /^#+/.exec(lines[at]!)![0].length;
  let end = lines.length;
  for (let i = at + 1; i < lines.length; i++) {
    const m = /^(#+) /.exec(lines[i]!);
    if (m && m[1]!.length <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(at, end).join('\n').trim();
}

// ---------------------------------------------------------------------------------------------
// Records decoded

/** A field's defined bits from a mask's hex (CaseResult.mask); undefined without a mask: every bit. */
function fieldMask(mask: string | undefined, f: RecordField): bigint | undefined {
  if (mask === undefined) return undefined;
  try {
    return readLE(parseHex(mask), f.offset, f.size);
  } catch {
    return undefined;
  }
}

const fullMask = (f: RecordField): bigint => (1n << BigInt(8 * f.size)) - 1n;

/** `all bits`, `none (not compared)`, or `0x…`. */
function maskText(mask: bigint | undefined, f: RecordField): string {
  if (mask === undefined || mask === fullMask(f)) return 'all bits';
  if (mask === 0n) return 'none (not compared)';
  return hex(mask);
}

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** One line per field: name, raw value, decoded value (and the defined bits, for the expected record). */
function fieldLines(hexRecord: string, layout: readonly RecordField[], opts: { mask?: string | undefined; mark?: (f: RecordField) => string }): string[] {
  const d = decodeRecord(hexRecord, layout);
  const width = Math.max(...layout.map((f) => f.name.length), 5);
  const out = d.fields.map(({ field, value, text }) => {
    const raw = value === undefined ? '(missing)' : hex(value);
    const mark = opts.mark?.(field) ?? '';
    // the expected record shows each field's defined bits; the observed one its marks
    const defined = opts.mark ? '' : `  defined: ${maskText(fieldMask(opts.mask, field), field)}`;
    return `${pad(mark, 2)}${pad(field.name, width)}  ${pad(raw, 18)}  ${text}${defined}`;
  });
  return [...out, ...d.problems.map((p) => `  (${p})`)];
}

/** What the observed backend's difference in a field is: none, undefined bits only, a defined bit (with the registry entry, if one covers it). */
export interface FieldMark {
  field: string;
  state: 'same' | 'undefined-only' | 'differs';
  entry?: string;
}

/** Per field of the layout, how the backend's value compares with the reference's (from the case's FieldDiffs). */
export function fieldMarks(layout: readonly RecordField[], diffs: readonly FieldDiff[], backend: string): FieldMark[] {
  return layout.map((f) => {
    const d = diffs.find((x) => x.field === f.name);
    if (!d || !d.differing.includes(backend)) return { field: f.name, state: 'same' };
    if (!d.strict.includes(backend)) return { field: f.name, state: 'undefined-only' };
    const k = d.known.find((x) => x.backend === backend);
    return { field: f.name, state: 'differs', ...(k ? { entry: k.id } : {}) };
  });
}

function statusLine(r: CaseResult): string {
  return `status ${r.status}${r.reason ? ` — ${r.reason}` : ''}`;
}

/** expected.txt: the reference's record decoded by the template's layout, each field's defined bits. */
export function renderExpected(x: ReproInput): string {
  const layout = x.case.template.record;
  const e = x.expected;
  const head = [
    `${x.case.id}: the record ${x.reference.name} computes (${x.reference.version ?? 'svmconf model'})`,
    `template ${x.case.template.id} (${x.case.template.displayPath}), ${layout.length} fields, ${layoutBytes(layout)} bytes, little-endian`,
    '',
  ];
  if (!e) return [...head, `${x.reference.name} has no result for this case.`, ''].join('\n');
  if (e.status !== 'OK' || e.record === undefined) return [...head, statusLine(e), ''].join('\n');
  return [
    ...head,
    `record ${e.record}`,
    e.mask ? `defined-bits mask ${e.mask} (set bits are the ones the manual defines here, docs/svm-rules.md "Defined bits per field")` : 'defined-bits mask: none given, every bit of every field is compared',
    ...(e.open ? [`open: ${e.open} (the manual leaves this outcome open: no bit is compared)`] : []),
    ...(e.cpuidSvmEdx ? [`CPUID 8000_000A EDX as its kernel read it: ${e.cpuidSvmEdx}`] : []),
    '',
    ...fieldLines(e.record, layout, { mask: e.mask }),
    '',
    'Fields:',
    ...layout.map((f) => `  ${f.name} (${f.type}${f.role ? `, role ${f.role}` : ''}${f.definedWhen && f.definedWhen !== 'always' ? `, defined_when ${f.definedWhen}` : ''}): ${f.doc}`),
    '',
  ].join('\n');
}

function layoutBytes(layout: readonly RecordField[]): number {
  return layout.reduce((end, f) => Math.max(end, f.offset + f.size), 0);
}

/** observed.txt: the backend's record decoded, each field that differs marked, with the entry that covers it. */
export function renderObserved(x: ReproInput): string {
  const layout = x.case.template.record;
  const o = x.observed;
  const b = x.backend;
  const head = [
    `${x.case.id}: the record ${b.name} gave (${b.version ?? 'version unknown'})`,
    `from ${x.source}; compared with ${x.reference.name}`,
    '',
    statusLine(o),
  ];
  if (o.status === 'CRASH' && o.record) return [...head, `crash record ${o.record}`, `  ${describeCrash(o.record)}`, '', ...fieldLines(o.record, CRASH_LAYOUT, { mark: () => '' }), ''].join('\n');
  if (o.status !== 'OK' || o.record === undefined) return [...head, ''].join('\n');
  const marks = fieldMarks(layout, x.comparison.diffs, b.name);
  const markOf = (f: RecordField): string => {
    const m = marks.find((k) => k.field === f.name);
    return m?.state === 'differs' ? (m.entry ? '~' : '*') : m?.state === 'undefined-only' ? '.' : '';
  };
  const notes = marks.filter((m) => m.state !== 'same').map((m) => {
    const d = x.comparison.diffs.find((k) => k.field === m.field);
    const want = d?.values.find((v) => v.backend !== b.name)?.text ?? '?';
    const how = m.state === 'undefined-only' ? 'differs only in bits the manual leaves undefined (not a divergence)'
      : m.entry ? `differs; known deviation ${m.entry} (expected/deviations.yaml)` : 'differs in a defined bit; no registry entry covers it (a divergence)';
    return `  ${m.field}: ${how}; ${x.reference.name} gives ${want}`;
  });
  const sizeDiff = x.comparison.diffs.filter((d) => d.field.startsWith('(') && d.differing.includes(b.name));
  return [
    ...head,
    `record ${o.record}`,
    ...(o.cpuidSvmEdx ? [`CPUID 8000_000A EDX as its kernel read it: ${o.cpuidSvmEdx}`] : []),
    `verdict against ${x.reference.name}: ${verdictText(x)}`,
    '',
    ...fieldLines(o.record, layout, { mark: markOf }),
    '',
    'Marks: * differs in a defined bit, ~ differs and a registry entry covers it, . differs only in undefined bits.',
    ...(notes.length || sizeDiff.length ? ['', ...notes, ...sizeDiff.map((d) => `  ${d.field}: ${d.values.map((v) => `${v.backend} ${v.text}`).join(', ')}`)] : []),
    '',
  ].join('\n');
}

/** The intro's sentence on how the records compare. */
function introVerdict(x: ReproInput): string {
  const b = x.backend.name;
  if (x.observed.status !== 'OK') return `${b} gave no record (${x.observed.status}).`;
  const strict = x.comparison.diffs.some((d) => d.strict.includes(b));
  return strict ? 'their records differ as below.' : 'their records agree on every defined bit.';
}

/** The case's verdict in words, for the observed backend. */
export function verdictText(x: Pick<ReproInput, 'comparison' | 'backend' | 'observed' | 'expected'>): string {
  const b = x.backend.name;
  const c = x.comparison;
  if (x.observed.status !== 'OK') return `no record to compare (${x.observed.status})`;
  if (!x.expected || x.expected.status !== 'OK') return 'nothing to compare with (the reference has no record)';
  if (c.diverging.includes(b)) return 'diverges (a defined bit differs and no registry entry covers it)';
  if (c.known.includes(b)) return `known deviation (${[...new Set(c.deviations.map((d) => d.id))].join(', ')})`;
  if (c.verdict === 'open') return `open (${c.open ?? 'the manual leaves the outcome open'})`;
  return c.diffs.some((d) => d.differing.includes(b)) ? 'agrees on every defined bit (differs in undefined bits only)' : 'agrees: the same record on every bit';
}

// ---------------------------------------------------------------------------------------------
// checks.md

/** checks.md: what the template says the manual requires, the sections it cites, the case's parameters and record. */
export function renderChecks(x: ReproInput): string {
  const t = x.case.template;
  const cites = citations(t.checks);
  const params = Object.entries(x.case.params);
  return [
    `# ${t.id}: ${t.title}`,
    '',
    `Case \`${x.case.id}\`, template \`${t.displayPath}\` of svmconf ${x.commit}.`,
    '',
    '## Checks',
    '',
    '(the template\'s `checks:`, what the manual says should happen)',
    '',
    ...t.checks.trimEnd().split('\n').map((l) => `> ${l}`.trimEnd()),
    '',
    '## Manual sections cited',
    '',
    ...(cites.manual.length ? cites.manual.map((c) => `- ${c}`) : ['- (none named in the checks)']),
    ...(x.entries.length ? ['', 'and by the registry entries that cover this case:', '', ...x.entries.map((e) => `- ${e.id}: ${e.evidence.manual}`)] : []),
    ...(x.docSections.length ? ['', '## svmconf\'s rules cited', '', ...x.docSections.flatMap((d) => [`### ${d.ref}`, '', d.text ? d.text.replace(/^#+ .*\n?/, '').trim() : '(section not found)', ''])] : ['']),
    '## Parameters',
    '',
    ...(params.length ? ['| parameter | value |', '|---|---|', ...params.map(([k, v]) => `| ${k} | ${v} |`)] : ['(none: the template has one case)']),
    '',
    '## Record',
    '',
    '| field | type | offset | role | what it is |',
    '|---|---|---:|---|---|',
    ...t.record.map((f) => `| ${f.name} | ${f.type} | ${f.offset} | ${f.role ?? ''} | ${f.doc.replace(/\|/g, '\\|')} |`),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// report.txt

/** The Subject's summary: the covering entry's summary, else the first differing fields, else what happened. */
export function summaryLine(x: ReproInput): string {
  const b = x.backend.name;
  if (x.observed.status !== 'OK') return `${x.case.template.title.length <= 50 ? x.case.template.title : x.case.id}: ${x.observed.status}${x.observed.reason ? ` (${firstSentence(x.observed.reason)})` : ''}`;
  const strict = x.comparison.diffs.filter((d) => d.strict.includes(b));
  // every difference covered: the title of their one finding, else the summary of the entry that covers the first differing field
  if (strict.length && strict.every((d) => d.known.some((k) => k.backend === b))) {
    const covering = strict.map((d) => x.entries.find((e) => e.id === d.known.find((k) => k.backend === b)!.id));
    const findings = [...new Set(covering.map((e) => e?.finding))];
    const f = findings.length === 1 && findings[0] !== undefined ? x.findings.find((k) => k.id === findings[0]) : undefined;
    if (f) return f.title;
    if (covering[0]) return firstSentence(covering[0].summary);
  }
  const what = x.case.template.title.length <= 50 ? x.case.template.title : x.case.id;
  if (strict.length) {
    const parts = strict.slice(0, 2).map((d) => {
      const got = d.values.find((v) => v.backend === b)?.text ?? '?';
      const want = d.values[0]?.text ?? '?';
      return `${d.field} ${got}, expected ${want}`;
    });
    return `${what}: ${parts.join('; ')}${strict.length > 2 ? ` (+${strict.length - 2} more fields)` : ''}`;
  }
  return `${what}: the same record as the model on every defined bit`;
}

function firstSentence(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  const m = /^(.*?[^.]{3})\.(?:\s|$)/.exec(one);
  return (m ? m[1]! : one).replace(/\.$/, '');
}

/** Text wrapped at `width` columns with `indent` before each line (words are never split). */
export function wrap(text: string, width = 76, indent = '  '): string[] {
  const out: string[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    let line = '';
    for (const w of para.replace(/\s+/g, ' ').trim().split(' ')) {
      if (w === '') continue;
      if (line && indent.length + line.length + 1 + w.length > width) {
        out.push(indent + line);
        line = w;
      } else line = line ? `${line} ${w}` : w;
    }
    if (line) out.push(indent + line);
    out.push('');
  }
  while (out.length && out[out.length - 1] === '') out.pop();
  return out;
}

function packagesText(p: Record<string, string> | undefined): string {
  const list = Object.entries(p ?? {}).map(([k, v]) => `${k}=${v}`);
  return list.length ? list.join(' ') : '(not known)';
}

/** The bundle's files worth naming in the report, with their sizes (MANIFEST has them all). */
export interface BundleFile {
  name: string;
  bytes: number;
  sha256: string;
  what: string;
}

export function renderReport(x: ReproInput, files: readonly BundleFile[]): string {
  const b = x.backend;
  const t = x.case.template;
  const cites = citations(t.checks);
  const params = Object.entries(x.case.params).map(([k, v]) => `${k}=${v}`).join(', ');
  const e = x.expected;
  const o = x.observed;
  const marks = fieldMarks(t.record, x.comparison.diffs, b.name);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  const script = scriptName(b.name);
  const lines = [
    `Subject: [svmconf] ${x.component}: ${summaryLine(x)}`,
    '',
    ...wrap(`svmconf (a differential conformance suite for AMD SVM event injection) ran the case ${x.case.id} on ${b.name} and on its reference model, ${x.reference.name}, which computes each record from the AMD manual's rules; ${introVerdict(x)} The folder that comes with this text reproduces the observation without svmconf: ${script}.`, 76, ''),
    '',
    'What the guest does',
    '',
    ...wrap(`${t.title} (template ${t.id}${params ? `, ${params}` : ''}).`),
    '',
    ...wrap(t.checks),
    '',
    'Expected',
    '',
    ...(cites.manual.length ? wrap(`Manual: ${cites.manual.join('; ')}.`) : []),
    ...x.entries.map((en) => `  Registry ${en.id}: ${en.evidence.manual}`),
    ...wrap(`${x.reference.name} (${x.reference.version ?? 'svmconf model'}) computes:`),
    ...(e && e.status === 'OK' && e.record !== undefined ? fieldLines(e.record, t.record, { mask: e.mask }).map((l) => `  ${l}`) : [`    ${e ? statusLine(e) : 'no result'}`]),
    ...(e?.open ? wrap(`The manual leaves this outcome open: ${e.open}`) : []),
    '',
    'Observed',
    '',
    ...wrap(`${b.name} (${b.version ?? 'version unknown'}) gives (* a defined bit differs, ~ covered by a registry entry, . undefined bits only):`),
    ...(o.status === 'OK' && o.record !== undefined
      ? fieldLines(o.record, t.record, { mark: (f) => { const m = marks.find((k) => k.field === f.name); return m?.state === 'differs' ? (m.entry ? '~' : '*') : m?.state === 'undefined-only' ? '.' : ''; } }).map((l) => `  ${l}`)
      : [`    ${statusLine(o)}`, ...(o.record ? [`    ${describeCrash(o.record)}`] : [])]),
    ...wrap(`Verdict: ${verdictText(x)}.`),
    ...x.entries.flatMap((en) => ['', ...wrap(`Known as ${en.id} (expected/deviations.yaml, ${en.versions.range}): ${en.summary}`), ...evidenceLines(en).flatMap((l) => wrap(l, 76, '    '))]),
    ...x.findings.flatMap((f) => ['', ...wrap(`Finding ${f.id} (${findingLink(f.id)}): ${f.title}. ${f.component}; ${FINDING_STATUS_WORDS[f.status]}.${f.upstream.length ? ` Upstream: ${f.upstream.join('; ')}.` : ' Not reported upstream yet.'}`)]),
    '',
    'How to reproduce',
    '',
    ...wrap(`sh ${script} in the folder: it boots the kernel of this one case (kernel.elf, the case at start=0) ${runWords(x.run)}, writes the guest's COM1 output to serial.log, takes the case's line (SVMCONF CASE <id> <status> <record> <crc>) and compares the record with observed.record: "reproduced" and exit 0 when it is the same, the fields that differ and exit 1 otherwise. TIMEOUT=<seconds> (default ${x.timeoutSeconds}) bounds the boot.`),
    '',
    `  Observed on: ${b.version ?? '?'}${b.peer ? ` (pinned peer ${b.peer})` : ''}`,
    ...wrap(`Packages: ${packagesText(b.packages)}`),
    ...(x.run.kind === 'kvm-tcg' ? wrap(`TCG host: Linux ${x.run.kernel.release} on ${x.run.qemuVersion} TCG, built from ${x.run.kernel.debs.join(', ')}; vmlinuz and initrd.gz are in the folder (initrd.gz is svmconf's: no package holds it).`) : []),
    `  Folder: ${files.length} files besides this report and MANIFEST, ${(total / 1e6).toFixed(1)} MB (MANIFEST lists every file with its sha256)`,
    `  Source of the observed record: ${x.source}`,
    '',
    `svmconf commit ${x.commit}`,
    '',
  ];
  return lines.join('\n');
}

const FINDING_STATUS_WORDS: Readonly<Record<Finding['status'], string>> = {
  bug: 'a bug, present in the newest version checked',
  fixed: 'fixed upstream',
  artefact: "an artefact of the emulated hardware, not the component's own error",
  limitation: 'a known limitation of the component',
};

function runWords(r: ReproRun): string {
  switch (r.kind) {
    case 'qemu': return `on QEMU (QEMU=<command> to use another binary${r.peer ? ', PEER_ROOT=<root> to run it from a root of the pinned packages' : ''})`;
    case 'bochs': return `on Bochs from floppy.img with bochsrc (BOCHS=<command>${r.peer ? ', PEER_ROOT=<root>' : ''})`;
    case 'kvm': return 'on /dev/kvm with svmconf\'s native helper, built from native/ by the script (SVMCONF_KVM=<binary> to use one already built)';
    case 'kvm-tcg': return `in a Linux guest of QEMU TCG whose KVM runs the native helper (QEMU=<command>${r.peer ? ', PEER_ROOT=<root>' : ''})`;
  }
}

// ---------------------------------------------------------------------------------------------
// The script

/** Utilities a script needs besides the VMM (a POSIX shell's own builtins aside): its NEEDS line checks them. */
const COMMON_TOOLS = ['awk', 'cat', 'dirname', 'gzip', 'grep', 'head', 'od', 'rm', 'tail', 'timeout', 'tr'];

export function scriptTools(r: ReproRun): string[] {
  switch (r.kind) {
    case 'qemu': return [...COMMON_TOOLS];
    // unshare runs `true` from PATH to try the namespace first
    case 'bochs': return [...COMMON_TOOLS, 'sed', 'true', 'unshare'];
    case 'kvm': return [...COMMON_TOOLS];
    case 'kvm-tcg': return [...COMMON_TOOLS, 'cp', 'mkdir', 'sleep'];
  }
}

/** The VMM commands a script runs when no variable names another (Debian's bochs is a wrapper of bochs-bin; the kvm helper is built with cc). */
export function defaultVmmTools(r: ReproRun): string[] {
  switch (r.kind) {
    case 'qemu': case 'kvm-tcg': return ['qemu-system-x86_64'];
    case 'bochs': return ['bochs', 'bochs-bin'];
    case 'kvm': return ['cc'];
  }
}

/** The check that the VMM command (the first word of `$variable`) exists, naming the variable that changes it. */
function vmmCheck(variable: string): string {
  return `command -v \${${variable}%% *} >/dev/null 2>&1 || { echo "cannot run: \${${variable}%% *} not found (${variable}=<command> names another)" >&2; exit 2; }`;
}

/** The `PEER_ROOT` block: the peer's launch with the root's path, as svmconf runs it (docs/peers.md "Running a peer"). */
function peerBlock(p: PeerNote, variable: string, script: string): string[] {
  const dq = (s: string): string => `"${s.replace(/(["\\`])/g, '\\$1')}"`;
  return [
    `# Observed with the pinned peer ${p.pin}: ${packagesText(p.packages)}.`,
    `# Such a root is what \`svmconf peers\` builds (${p.builtAt}); run this script from one with`,
    `#   PEER_ROOT=/path/to/root sh ${script}`,
    `# which launches the root's binary through the root's own loader and libraries:`,
    `if [ -n "\${PEER_ROOT:-}" ]; then`,
    ...Object.entries(p.env).map(([k, v]) => `  ${k}=${dq(v)}; export ${k}`),
    `  ${variable}=${dq([p.file, ...p.args].join(' '))}`,
    'fi',
  ];
}

/** The part every script shares after the boot: the case's line from serial.log, compared with observed.record. */
function compareBlock(x: ReproInput): string[] {
  const fields = x.case.template.record.map((f) => `${f.name} ${f.offset} ${f.size}`).join('\n');
  return [
    '# --- the case\'s line (docs/protocol.md): SVMCONF CASE <id> <status> <record> <crc>',
    `CASE_ID=${shq(x.case.id)}`,
    `OBSERVED_STATUS=${shq(x.observed.status)}`,
    ...(x.observed.reason ? [`# observed: ${x.observed.status} — ${x.observed.reason.replace(/\n/g, ' ')}`] : []),
    `# the record's fields: name, byte offset, size (template ${x.case.template.id}, little-endian)`,
    `FIELDS=${shq(fields)}`,
    'line=$(tr -d \'\\r\' < serial.log | grep -a -o \'SVMCONF CASE .*\' | awk -v id="$CASE_ID" \'$3 == id { print; exit }\')',
    'if [ -z "$line" ]; then',
    '  echo "serial.log has no CASE line for $CASE_ID; the VMM\'s last words (vmm.log):"',
    '  tail -n 5 vmm.log 2>/dev/null | awk \'{ print "  " $0 }\'',
    '  case "$OBSERVED_STATUS" in',
    '    TIMEOUT|ERROR|CRASH|UNSUPPORTED)',
    '      if [ ! -s observed.record ]; then',
    '        echo "reproduced: no CASE line for $CASE_ID, as observed ($OBSERVED_STATUS)"; exit 0',
    '      fi ;;',
    '  esac',
    '  echo "not reproduced: no CASE line now, where the case gave $OBSERVED_STATUS"',
    '  exit 1',
    'fi',
    '# the CRC-32 of the line up to its last space is the one of gzip (IEEE 802.3): gzip\'s trailer holds it',
    'body=${line% *}',
    'crc=${line##* }',
    'sum=$(printf \'%s\' "$body" | gzip -c | tail -c 8 | od -An -N4 -tx4 | tr -d \' \\n\')',
    '[ "$sum" = "$crc" ] || echo "warning: the line\'s CRC is $crc, its text gives $sum (a byte changed on the wire?)"',
    '# SKIP(<reason>) is SKIP; the reason may hold spaces, the record is the last word',
    'status=$(printf \'%s\\n\' "$body" | awk \'{ s = $4; for (i = 5; i < NF; i++) s = s " " $i; sub(/\\(.*/, "", s); print s }\')',
    'record=$(printf \'%s\\n\' "$body" | awk \'{ print $NF }\')',
    '[ "$record" = "-" ] && record=',
    'want=$(tr -d \' \\n\' < observed.record)',
    'echo "case $CASE_ID: $status $record"',
    'if [ "$status" = "$OBSERVED_STATUS" ] && [ "$record" = "$want" ]; then',
    '  if [ "$status" = OK ]; then echo "reproduced: the record equals the observed one"',
    '  else echo "reproduced: status $status and its record equal the observed ones"; fi',
    '  exit 0',
    'fi',
    '[ "$status" = "$OBSERVED_STATUS" ] || echo "not reproduced: status $status, observed $OBSERVED_STATUS"',
    'if [ "$status" = OK ] && [ "$OBSERVED_STATUS" = OK ]; then',
    '  echo "not reproduced: the record differs from observed.record in these fields (hex values):"',
    '  printf \'%s\\n\' "$FIELDS" | awk -v a="$want" -v b="$record" \'',
    '    function le(h,   i, s) { s = ""; for (i = length(h) - 1; i > 0; i -= 2) s = s substr(h, i, 2); sub(/^0+/, "", s); return s == "" ? "0" : s }',
    '    { x = le(substr(a, 2 * $2 + 1, 2 * $3)); y = le(substr(b, 2 * $2 + 1, 2 * $3)); if (x != y) printf "  %-20s observed 0x%s, now 0x%s\\n", $1, x, y }',
    '    END { if (length(a) != length(b)) printf "  (the record is %d bytes, observed %d)\\n", length(b) / 2, length(a) / 2 }\'',
    'fi',
    'exit 1',
  ];
}

/** The tools check: every tool the script uses must be on PATH, else exit 2 naming the missing ones. */
function toolsBlock(tools: readonly string[]): string[] {
  return [
    `NEEDS=${shq(tools.join(' '))}`,
    'missing=',
    'for t in $NEEDS; do command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done',
    'if [ -n "$missing" ]; then echo "cannot run: not on PATH:$missing" >&2; exit 2; fi',
  ];
}

/** The boot itself, per kind of backend; its COM1 output ends up in serial.log, the VMM's own output in vmm.log. */
function bootBlock(x: ReproInput): string[] {
  const r = x.run;
  const vb = x.backend.version ?? '?';
  switch (r.kind) {
    case 'qemu':
      return [
        ...(r.peer ? peerBlock(r.peer, 'QEMU', scriptName(x.backend.name)) : []),
        ...(r.peer ? [] : [`# Observed with ${vb}: ${packagesText(x.backend.packages)}.`]),
        'QEMU=${QEMU:-qemu-system-x86_64}',
        vmmCheck('QEMU'),
        'echo "QEMU: $($QEMU --version 2>&1 | head -n 1) (observed with ' + vb.replace(/"/g, '') + ')"',
        '# COM1 is QEMU\'s stdout; the kernel leaves through isa-debug-exit (port 0xf4), so QEMU\'s exit status is odd',
        `timeout "$TIMEOUT" $QEMU ${shJoin(r.args)} > serial.log 2> vmm.log || rc=$?`,
      ];
    case 'bochs':
      return [
        ...(r.peer ? [...peerBlock(r.peer, 'BOCHS', scriptName(x.backend.name)), '# the BIOS files of the bochsrc are the root\'s then', 'if [ -n "${PEER_ROOT:-}" ]; then sed "s#file=/usr/share/#file=$PEER_ROOT/usr/share/#" bochsrc > bochsrc.run; else cat bochsrc > bochsrc.run; fi'] : ['cat bochsrc > bochsrc.run']),
        ...(r.peer ? [] : [`# Observed with ${vb}: ${packagesText(x.backend.packages)}.`]),
        'BOCHS=${BOCHS:-bochs -q}',
        vmmCheck('BOCHS'),
        '# Bochs draws to an rfb display that listens nowhere: its own network namespace (unshare -rn, or -n as root)',
        'if unshare -rn true 2>/dev/null; then NS="unshare -rn"; elif unshare -n true 2>/dev/null; then NS="unshare -n"; else echo "cannot run: no private network namespace (unshare -rn / -n)" >&2; exit 2; fi',
        ': > serial.log',
        '# floppy.img: runner/bochs/boot.S as boot sector with the command line start=0 end=1, then kernel.bin;',
        '# the kernel writes COM1 to serial.log (bochsrc) and leaves by "Shutdown" on port 0x8900; dbg.rc continues and quits',
        'timeout "$TIMEOUT" $NS $BOCHS -f bochsrc.run -rc dbg.rc > vmm.log 2>&1 < /dev/null || rc=$?',
      ];
    case 'kvm':
      return [
        '# svmconf\'s native KVM runner (a small VMM over /dev/kvm): built from native/ (its sources and the',
        '# generated svmconf-arch.h, as `make native` builds it) unless SVMCONF_KVM names a helper',
        'SVMCONF_KVM=${SVMCONF_KVM:-./svmconf-kvm}',
        'if [ ! -x "$SVMCONF_KVM" ]; then',
        '  ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -I native -o svmconf-kvm native/*.c || { echo "cannot build the helper (needs a C compiler, libc6-dev, linux-libc-dev)" >&2; exit 2; }',
        '  SVMCONF_KVM=./svmconf-kvm',
        'fi',
        `# Observed with ${vb}.`,
        '# cpuid.txt: the guest\'s CPUID as the run gave it (KVM_GET_SUPPORTED_CPUID of the machine that observed it,',
        '# with the features the case hides cleared); CPUID=probe, or no cpuid.txt, lets the helper take this',
        '# machine\'s KVM_GET_SUPPORTED_CPUID as it is (right for a case that hides no feature)',
        `if [ "\${CPUID:-}" = probe ] || [ ! -f cpuid.txt ]; then in=/dev/null; set -- ${shJoin(r.helperArgs.filter((a, i, all) => !(a === '--cpuid' || all[i - 1] === '--cpuid')))}`,
        `else in=cpuid.txt; set -- ${shJoin(r.helperArgs)}; fi`,
        'timeout "$TIMEOUT" "$SVMCONF_KVM" "$@" < "$in" > serial.log 2> vmm.log || rc=$?',
      ];
    case 'kvm-tcg':
      return [
        ...(r.peer ? peerBlock(r.peer, 'QEMU', scriptName(x.backend.name)) : []),
        `# Observed with ${vb}`,
        `# (packages ${packagesText(x.backend.packages)}).`,
        `# The TCG host: Linux ${r.kernel.release} booted under ${r.qemuVersion} TCG with SVM emulated (-cpu max).`,
        `# vmlinuz is that kernel as ${r.kernel.debs.filter((d) => /^linux-/.test(d)).join(', ') || 'its package'} ships it`,
        '# (copied here: the .deb is many times larger, and old kernel versions leave the archive; to check it,',
        `#  apt-get download ${r.kernel.debs.filter((d) => /^linux-/.test(d)).join(' ') || '<the kernel package>'}, or snapshot.debian.org, and compare sha256 with MANIFEST).`,
        '# initrd.gz is svmconf\'s (runner/tcghost/image.ts): busybox, kvm_amd (nested=1) and the 9p modules of that',
        '# kernel, svmconf\'s native KVM runner linked statically, and runner/tcghost/init.sh as /init, which runs the',
        '# runner for each request in the 9p share "spool": spool/<id>.req/{args,stdin,kernel.elf} in; out (COM1),',
        '# err, rc back; spool/stop powers the guest off.',
        'QEMU=${QEMU:-qemu-system-x86_64}',
        vmmCheck('QEMU'),
        'echo "QEMU: $($QEMU --version 2>&1 | head -n 1) (observed with ' + r.qemuVersion.replace(/"/g, '') + ')"',
        'rm -rf spool; mkdir -p spool/0.req',
        'cp kernel.elf spool/0.req/kernel.elf',
        'cp cpuid.txt spool/0.req/stdin',
        `printf '%s\\n' ${shJoin(r.helperArgs)} > spool/0.req/args`,
        '# once the request has its exit status, ask the guest to power off',
        '( while [ ! -e spool/0.req/rc ]; do sleep 0.2; done; : > spool/stop ) &',
        'watcher=$!',
        `timeout "$TIMEOUT" $QEMU ${shJoin(r.qemuArgs)} > vmm.log 2>&1 < /dev/null || rc=$?`,
        'kill "$watcher" 2>/dev/null || true',
        'cat spool/0.req/out > serial.log 2>/dev/null || : > serial.log',
        'cat spool/0.req/err >> vmm.log 2>/dev/null || true',
      ];
  }
}

/** run-<backend>.sh: boot the peer on the bundle's kernel, bounded, and compare the case's record with observed.record. */
export function renderScript(x: ReproInput): string {
  return [
    '#!/bin/sh',
    `# ${x.case.id} on ${x.backend.name}: a reproducer written by svmconf ${x.commit} (docs/repro.md).`,
    '# It needs no svmconf and no node: the peer, a POSIX shell and the tools NEEDS names.',
    '#   sh ' + scriptName(x.backend.name) + '          boot, then say "reproduced" (exit 0) or how the record differs (exit 1); 2: cannot run',
    `#   TIMEOUT=<seconds>         bound of the boot (default ${x.timeoutSeconds})`,
    'set -u',
    'cd "$(dirname "$0")" || exit 2',
    `TIMEOUT=\${TIMEOUT:-${x.timeoutSeconds}}`,
    ...toolsBlock(scriptTools(x.run)),
    'rc=0',
    'rm -f serial.log vmm.log',
    ...bootBlock(x),
    'if [ "$rc" = 124 ]; then echo "the boot did not end within $TIMEOUT s (timeout killed it)"; fi',
    ...compareBlock(x),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// MANIFEST

export function renderManifest(x: Pick<ReproInput, 'case' | 'backend' | 'commit'>, files: readonly BundleFile[]): string {
  const width = Math.max(...files.map((f) => f.name.length), 8);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  return [
    `svmconf reproducer: ${x.case.id} on ${x.backend.name} (svmconf ${x.commit})`,
    `Run: sh ${scriptName(x.backend.name)}   Read first: report.txt`,
    '',
    ...files.map((f) => `${pad(f.name, width)}  ${String(f.bytes).padStart(9)}  ${f.sha256}  ${f.what}`),
    '',
    `${files.length} files, ${total} bytes (this MANIFEST not counted)`,
    '',
  ].join('\n');
}
