// A KTAP version 1 parser written from the kernel's Documentation/dev-tools/ktap.rst, strict where
// the specification says "must": for test/ktap.spec.ts to check what `--format ktap` prints.
//   - output and every subtest begin with the version line `KTAP version 1`, then a plan `1..N`
//   - result lines `ok|not ok <number> [<description>] [# <directive> [<diagnostic>]]`, numbered
//     from 1 and by one more each, at each nesting level; the description holds no `#`
//   - a subtest's lines are indented two spaces more than its parent's; its own result line
//     follows it at the parent's level
//   - diagnostic lines `# …` may appear anywhere; anything else is an unknown line (refused here:
//     svmconf prints none)

export interface KtapTest {
  number: number;
  ok: boolean;
  description: string;
  directive?: string;
  diagnostic?: string;
  subtests: KtapTest[];
  /** Diagnostic lines seen just before the result (inside the subtest for a test with subtests). */
  notes: string[];
}

export class KtapParseError extends Error {}

const RESULT_RE = /^(ok|not ok) ([1-9][0-9]*)(?: ([^#]*?))?\s*(?:# (\S+)(?: (.*))?)?$/;

export function parseKtap(text: string): KtapTest[] {
  const lines = text.replace(/\n$/, '').split('\n');
  let i = 0;
  const fail = (why: string): never => {
    throw new KtapParseError(`line ${i + 1}: ${why}: ${JSON.stringify(lines[i] ?? '(end)')}`);
  };
  function level(indent: string): KtapTest[] {
    if (lines[i] !== `${indent}KTAP version 1`) fail(`expected the version line at indent ${indent.length}`);
    i++;
    while (lines[i]?.startsWith(`${indent}# `)) i++;
    const plan = new RegExp(`^${indent}1\\.\\.([0-9]+)$`).exec(lines[i] ?? '');
    if (!plan) fail('expected a plan line 1..N');
    i++;
    const want = Number(plan![1]);
    const tests: KtapTest[] = [];
    let notes: string[] = [];
    while (i < lines.length) {
      const line = lines[i]!;
      if (!line.startsWith(indent)) break;
      const rest = line.slice(indent.length);
      if (rest.startsWith('# ') || rest === '#') {
        notes.push(rest.slice(2));
        i++;
        continue;
      }
      // a subtest: its lines two spaces in, then its own result line at this level
      const subtests = rest.startsWith('  KTAP version 1') ? level(`${indent}  `) : [];
      const r = RESULT_RE.exec(lines[i]?.slice(indent.length) ?? '');
      if (!r || !lines[i]!.startsWith(indent) || lines[i]!.startsWith(`${indent} `)) fail('expected a result line');
      const number = Number(r![2]);
      if (number !== tests.length + 1) fail(`test number ${number}, expected ${tests.length + 1}`);
      tests.push({ number, ok: r![1] === 'ok', description: (r![3] ?? '').trim(), ...(r![4] ? { directive: r![4] } : {}), ...(r![5] ? { diagnostic: r![5] } : {}), subtests, notes });
      notes = [];
      i++;
      if (tests.length === want && indent !== '') break;
    }
    if (tests.length !== want) fail(`the plan says ${want} tests, ${tests.length} were given`);
    return tests;
  }
  const top = level('');
  if (i !== lines.length) fail('unexpected line after the last top-level test');
  return top;
}
