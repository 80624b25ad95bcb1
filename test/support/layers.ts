// The import check of test/layers.spec.ts: every relative import of every TypeScript file (static
// `import … from`, `export … from`, side-effect `import '…'`, dynamic `import('…')`), read with the
// TypeScript compiler's own pre-processor (so an import named in a comment or a string is not one),
// checked against the stages' import rules and for file-level cycles.

import ts from 'typescript';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';

/**
 * Which top-level folders a folder's files may import from. Data flows one way: templates →
 * generator → runner → report, the model below the runner, suite/ composing the stages, the CLI,
 * benchmarks, scripts and specs on top. `*`: anything.
 */
export const IMPORT_RULES: Readonly<Record<string, readonly string[] | '*'>> = {
  arch: ['arch'],
  core: ['core', 'arch'],
  model: ['model', 'core', 'arch'],
  generator: ['generator', 'model', 'core', 'arch'],
  runner: ['runner', 'generator', 'model', 'core', 'arch'],
  report: ['report', 'model', 'core', 'arch'],
  suite: ['suite', 'report', 'runner', 'generator', 'model', 'core', 'arch'],
  bin: '*',
  bench: '*',
  scripts: '*',
  test: '*',
};

/** File (repository path, `/`-separated) → the repository paths it imports. */
export type ImportGraph = Map<string, string[]>;

/** The relative module names a source text imports, in order. */
export function relativeImports(text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((f) => f.fileName).filter((n) => n.startsWith('./') || n.startsWith('../'));
}

/** The graph of `files` (repository path → source text); imports resolved to repository paths. */
export function importGraph(files: ReadonlyMap<string, string>): ImportGraph {
  const g: ImportGraph = new Map();
  for (const [file, text] of files) {
    g.set(file, relativeImports(text).map((spec) => posix.normalize(posix.join(posix.dirname(file), spec))));
  }
  return g;
}

/** Every .ts file under `root` (repository paths), without `skip`ped top-level folders. */
export function tsFiles(root: string, skip: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      const rel = relative(root, path).split('\\').join('/');
      if (e.isDirectory()) {
        if (e.name.startsWith('.') || e.name === 'node_modules' || skip.includes(rel)) continue;
        walk(path);
      } else if (e.name.endsWith('.ts')) out.set(rel, readFileSync(path, 'utf8'));
    }
  };
  walk(root);
  return out;
}

const folderOf = (path: string): string => (path.includes('/') ? path.slice(0, path.indexOf('/')) : '');

/** Imports against IMPORT_RULES, one line each: the file, the edge, and what its folder may import. */
export function layerViolations(g: ImportGraph, rules: Readonly<Record<string, readonly string[] | '*'>> = IMPORT_RULES): string[] {
  const out: string[] = [];
  for (const [file, targets] of g) {
    const from = folderOf(file);
    const allowed = rules[from];
    if (allowed === undefined) {
      out.push(`${file}: folder ${from || '(the root)'} is not in the import rules`);
      continue;
    }
    for (const t of targets) {
      if (t.startsWith('../')) out.push(`${file} -> ${t}: outside the repository`);
      else if (allowed !== '*' && !allowed.includes(folderOf(t))) out.push(`${file} -> ${t}: ${from}/ may import only ${allowed.join(', ')}`);
    }
  }
  return out;
}

/** The strongly connected components of more than one file (or a file importing itself), each sorted. */
export function cyclicComponents(g: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative over the files in sorted order so the output is stable
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!idx.has(v)) strong(v);
  return out.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/** One cycle through a component, as `a -> b -> a`, to name in a failure. */
export function cyclePath(g: ImportGraph, component: readonly string[]): string {
  const start = component[0]!;
  const inside = new Set(component);
  const seen = new Set<string>();
  const path: string[] = [];
  const find = (v: string): boolean => {
    path.push(v);
    for (const w of g.get(v) ?? []) {
      if (w === start) return true;
      if (inside.has(w) && !seen.has(w)) {
        seen.add(w);
        if (find(w)) return true;
      }
    }
    path.pop();
    return false;
  };
  find(start);
  return [...path, start].join(' -> ');
}

/**
 * The cycles of `g` not in `known`, and the `known` cycles that no longer exist (an allowance must
 * not outlive its cycle). A known cycle is the set of its files.
 */
export function checkCycles(g: ImportGraph, known: ReadonlyArray<readonly string[]>): { unexpected: string[]; stale: string[] } {
  const key = (files: readonly string[]): string => [...files].sort().join(' ');
  const found = cyclicComponents(g);
  const knownKeys = new Set(known.map(key));
  const foundKeys = new Set(found.map(key));
  return {
    unexpected: found.filter((c) => !knownKeys.has(key(c))).map((c) => cyclePath(g, c)),
    stale: known.filter((c) => !foundKeys.has(key(c))).map((c) => c.join(', ')),
  };
}
