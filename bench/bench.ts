// make bench: speed measured, never asserted. Each figure comes from this one run, and every
// ratio is between backends measured here and now (README "Performance").
//   1. the model's MIPS on a straight-line loop kernel (bench/templates/loop.S.hbs), run
//      LOOP_RUNS times in this process, each on a fresh Machine: the first run includes V8's
//      warm-up (compilation, and a first machine that runs measurably slower: README
//      "Performance"), so every run is printed, and the median is the figure
//   2. the model's MIPS over the L1 suite (instructions counted by the model)
//   3. wall time of the L1 suite under the model and under qemu-tcg, and their ratio
//   4. wall time per L1 kernel under each Bochs flavour

import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { Machine } from '../model/machine.ts';
import { GUEST_RAM_MIB } from '../generator/layout.ts';
import { qemuTcgBackend } from '../runner/backends/qemu.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { bochsBackends } from '../runner/backends/bochs.ts';
import { runKernels } from '../runner/schedule.ts';
import type { Kernel } from '../core/types.ts';
import type { Backend } from '../runner/backend.ts';

const BENCH_TEMPLATES = join(ROOT, 'bench', 'templates');

async function modelMips(kernels: Kernel[]): Promise<{ instructions: number; seconds: number }> {
  let instructions = 0;
  let seconds = 0;
  for (const k of kernels) {
    const m = new Machine({ ramBytes: GUEST_RAM_MIB << 20 });
    m.loadMultiboot(new Uint8Array(await readFile(k.elf)), 'start=0');
    const t = performance.now();
    const r = m.run(5_000_000_000);
    seconds += (performance.now() - t) / 1000;
    instructions += m.cpu.instructions;
    m.dispose();
    if (r.end !== 'exited') throw new Error(`model did not finish ${k.id}: ${JSON.stringify(r)}`);
  }
  return { instructions, seconds };
}

async function wall(kernels: Kernel[], backend: Backend): Promise<number> {
  const info = await backend.probe();
  if (!info.available) throw new Error(`${backend.name} unavailable: ${info.reason}`);
  const t = performance.now();
  await runKernels(kernels, [{ backend, info }], { jobs: 1, idleTimeoutMs: 60_000 });
  return (performance.now() - t) / 1000;
}

const loopKernels = await buildKernels(expandAll(await loadTemplates([BENCH_TEMPLATES])).filter((c) => c.template.id === 'bench.loop'), { extraDirs: [BENCH_TEMPLATES] });
const l1 = await buildKernels(filterCases(expandAll(await loadTemplates()), ['l1.*']));

/** Runs of the loop kernel: enough for a median that one noisy run does not move. */
const LOOP_RUNS = 5;
const loopRuns: Array<{ instructions: number; seconds: number }> = [];
for (let i = 0; i < LOOP_RUNS; i++) loopRuns.push(await modelMips(loopKernels));
const byRate = [...loopRuns].sort((a, b) => a.instructions / a.seconds - b.instructions / b.seconds);
const loop = byRate[Math.floor(LOOP_RUNS / 2)]!;
const suite = await modelMips(l1);
const modelWall = await wall(l1, modelBackend());
const tcgWall = await wall(l1, qemuTcgBackend());
const loopTcg = await wall(loopKernels, qemuTcgBackend());

const mips = (x: { instructions: number; seconds: number }) => (x.instructions / x.seconds / 1e6).toFixed(1);
console.log(`model, loop kernel:  ${mips(loop)} MIPS, median of ${LOOP_RUNS} runs (${loop.instructions} instructions in ${loop.seconds.toFixed(2)} s); each run in order: ${loopRuns.map(mips).join(', ')} (the first includes V8's warm-up)`);
console.log(`model, L1 suite:     ${mips(suite)} MIPS (${suite.instructions} instructions in ${suite.seconds.toFixed(2)} s, ${l1.length} kernels)`);
console.log(`L1 suite wall time, one job: model ${modelWall.toFixed(2)} s, qemu-tcg ${tcgWall.toFixed(2)} s, ratio model/qemu-tcg ${(modelWall / tcgWall).toFixed(2)}`);
console.log(`loop kernel wall time: model ${loop.seconds.toFixed(2)} s (run only), qemu-tcg ${loopTcg.toFixed(2)} s (boot included), ratio ${(loop.seconds / loopTcg).toFixed(2)}`);

/**
 * 4. Bochs: wall time per L1 kernel (one boot each, BIOS included) on each flavour, one job;
 * a flavour that cannot run here says why instead.
 */
async function bochsPerKernel(kernels: Kernel[]): Promise<string[]> {
  const lines: string[] = [];
  for (const backend of bochsBackends()) {
    const info = await backend.probe();
    if (!info.available) {
      lines.push(`${backend.name}: unavailable — ${info.reason}`);
      continue;
    }
    const seconds = await wall(kernels, backend);
    lines.push(`${backend.name}, L1 suite: ${seconds.toFixed(2)} s for ${kernels.length} kernels, ${(seconds / kernels.length).toFixed(3)} s per kernel (${info.version ?? 'Bochs'})`);
  }
  return lines;
}
for (const line of await bochsPerKernel(l1)) console.log(line);
