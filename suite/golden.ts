// Golden-record generation: every case of `kernels` run on the model under one profile, as the
// files of expected/<profile>/ (report/golden.ts reads, compares and writes them). The model
// computes; nothing here reads expected/.

import type { Kernel } from '../core/types.ts';
import type { Profile } from '../model/profile.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { runKernels } from '../runner/schedule.ts';
import { GOLDEN_SCHEMA, goldenEntry, type GoldenFile } from '../report/golden.ts';

/**
 * Run every case of `kernels` on the model under `profile`; cases the model cannot run under it
 * come back UNSUPPORTED with the reason (they are recorded, never left out). Template id → file.
 */
export async function runGolden(kernels: readonly Kernel[], profile: Profile, idleTimeoutMs = 30_000): Promise<Map<string, GoldenFile>> {
  const backend = modelBackend({ profile });
  const info = await backend.probe();
  const results = await runKernels(kernels, [{ backend, info }], { jobs: 1, idleTimeoutMs });
  const files = new Map<string, GoldenFile>();
  for (const k of kernels) {
    for (const c of k.cases) {
      const tid = c.template.id;
      let f = files.get(tid);
      if (!f) files.set(tid, (f = { schema: GOLDEN_SCHEMA, profile: profile.name, template: tid, cases: [] }));
      f.cases.push(goldenEntry(c.id, results.get(c.id)?.[backend.name]));
    }
  }
  return new Map([...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
