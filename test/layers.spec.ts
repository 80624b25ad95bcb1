// The stages import one way (test/support/layers.ts IMPORT_RULES: templates → generator → runner →
// report, the model below the runner, suite/ above the stages, the CLI on top) and no TypeScript
// file outside test/ is part of an import cycle. Fails naming the file and the edge.

import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { checkCycles, importGraph, layerViolations, relativeImports, tsFiles } from './support/layers.ts';

const ROOT = resolve(import.meta.dirname, '..');

describe('import layers', () => {
  const graph = importGraph(tsFiles(ROOT, ['test', 'build', 'out', 'scratch']));

  it('reads the whole TypeScript tree outside test/', () => {
    for (const f of ['bin/cli.ts', 'suite/run.ts', 'report/publish.ts', 'runner/schedule.ts', 'model/machine.ts', 'core/types.ts']) {
      assert.ok(graph.has(f), `${f} read`);
    }
    assert.ok(![...graph.keys()].some((f) => f.startsWith('test/') || f.includes('node_modules/')));
  });

  it('every import follows the import rules', () => {
    assert.deepEqual(layerViolations(graph), []);
  });

  it('no file-level import cycle', () => {
    const { unexpected } = checkCycles(graph, []);
    assert.deepEqual(unexpected, [], `import cycles:\n${unexpected.join('\n')}`);
  });

  describe('the checker', () => {
    const files = new Map([
      ['runner/a.ts', "import { b } from '../report/b.ts';\n// import { z } from '../report/z.ts';\nconst s = \"import('../report/s.ts')\";\n"],
      ['report/b.ts', "export { c } from './c.ts';\nimport type { T } from '../core/t.ts';\n"],
      ['report/c.ts', "export async function c() { return import('./b.ts'); }\nimport '../runner/side.ts';\n"],
      ['core/t.ts', "export type T = number;\n"],
      ['runner/side.ts', ''],
      ['arch/x.ts', "import { y } from '../../elsewhere/y.ts';\nimport { w } from 'node:fs';\n"],
      ['lib/odd.ts', ''],
    ]);
    const g = importGraph(files);

    it('reads static, re-export, side-effect and dynamic imports, not comments, strings or packages', () => {
      assert.deepEqual(relativeImports(files.get('runner/a.ts')!), ['../report/b.ts']);
      assert.deepEqual(g.get('report/c.ts'), ['report/b.ts', 'runner/side.ts']);
      assert.deepEqual(g.get('report/b.ts'), ['report/c.ts', 'core/t.ts']);
    });

    it('names each back edge, an import out of the repository and a folder without rules', () => {
      assert.deepEqual(layerViolations(g), [
        'runner/a.ts -> report/b.ts: runner/ may import only runner, generator, model, core, arch',
        'report/c.ts -> runner/side.ts: report/ may import only report, model, core, arch',
        'arch/x.ts -> ../elsewhere/y.ts: outside the repository',
        'lib/odd.ts: folder lib is not in the import rules',
      ]);
    });

    it('finds a cycle, tells it from an allowed one, and rejects an allowance whose cycle is gone', () => {
      assert.deepEqual(checkCycles(g, []), { unexpected: ['report/b.ts -> report/c.ts -> report/b.ts'], stale: [] });
      assert.deepEqual(checkCycles(g, [['report/c.ts', 'report/b.ts']]), { unexpected: [], stale: [] });
      assert.deepEqual(checkCycles(g, [['report/c.ts', 'report/b.ts'], ['core/t.ts', 'runner/side.ts']]), { unexpected: [], stale: ['core/t.ts, runner/side.ts'] });
      const self = importGraph(new Map([['model/m.ts', "import './m.ts';\n"]]));
      assert.deepEqual(checkCycles(self, []).unexpected, ['model/m.ts -> model/m.ts']);
    });
  });
});
