// make bench: speed measured, never asserted. Each figure comes from this one run, and every
// ratio is between backends measured here and now (README "Performance").
//   1. the model's MIPS on a straight-line loop kernel (bench/templates/loop.S.hbs), run
//      LOOP_RUNS times in this process, each on a fresh Machine: the first run includes V8's
//      warm-up (compilation, and a first machine that runs measurably slower: README
//      "Performance"), so every run is printed, and the median is the figure
//   2. the model's MIPS over the L1 suite (instructions counted by the model)
//   3. wall time of the L1 suite under the model and under qemu-tcg, and their ratio
// The model's MIPS are given by wall time and by the process's CPU time (process.cpuUsage, which
// also counts V8's helper threads: a conservative figure). On a shared machine the wall-time
// figure falls with the load, the CPU-time one much less; the load average is printed with them.

import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { Machine } from '../model/machine.ts';
import { GUEST_RAM_MIB } from '../generator/layout.ts';
import { qemuTcgBackend } from '../runner/backends/qemu.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { runKernels } from '../runner/schedule.ts';
import type { Kernel } from '../core/types.ts';

const BENCH_TEMPLATES = join(ROOT, 'bench', 'templates');

interface Speed { instructions: number; seconds: number; cpuSeconds: number }

async function modelMips(kernels: Kernel[]): Promise<Speed> {
  let instructions = 0;
  let seconds = 0;
  let cpuSeconds = 0;
  for (const k of kernels) {
    const m = new Machine({ ramBytes: GUEST_RAM_MIB << 20 });
    m.loadMultiboot(new Uint8Array(await readFile(k.elf)), 'start=0');
    const t = performance.now();
    const cpu = process.cpuUsage();
    const r = m.run(5_000_000_000);
    seconds += (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    cpuSeconds += (used.user + used.system) / 1e6;
    instructions += m.cpu.instructions;
    m.dispose();
    if (r.end !== 'exited') throw new Error(`model did not finish ${k.id}: ${JSON.stringify(r)}`);
  }
  return { instructions, seconds, cpuSeconds };
}

async function wall(kernels: Kernel[], backend: ReturnType<typeof qemuTcgBackend>): Promise<number> {
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
const loadBefore = loadavg()[0]!;
const loopRuns: Speed[] = [];
for (let i = 0; i < LOOP_RUNS; i++) loopRuns.push(await modelMips(loopKernels));
const byRate = [...loopRuns].sort((a, b) => a.instructions / a.seconds - b.instructions / b.seconds);
const loop = byRate[Math.floor(LOOP_RUNS / 2)]!;
const suite = await modelMips(l1);
const modelWall = await wall(l1, modelBackend());
const tcgWall = await wall(l1, qemuTcgBackend());
const loopTcg = await wall(loopKernels, qemuTcgBackend());

const mips = (x: Speed) => (x.instructions / x.seconds / 1e6).toFixed(1);
const cpuMips = (x: Speed) => (x.instructions / x.cpuSeconds / 1e6).toFixed(1);
const byCpuRate = [...loopRuns].sort((a, b) => a.instructions / a.cpuSeconds - b.instructions / b.cpuSeconds);
const loopCpu = byCpuRate[Math.floor(LOOP_RUNS / 2)]!;
console.log(`machine: load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after (${process.arch}, Node ${process.versions.node})`);
console.log(`model, loop kernel:  ${mips(loop)} MIPS, median of ${LOOP_RUNS} runs (${loop.instructions} instructions in ${loop.seconds.toFixed(2)} s); each run in order: ${loopRuns.map(mips).join(', ')} (the first includes V8's warm-up)`);
console.log(`                     ${cpuMips(loopCpu)} MIPS per CPU second, median; each run: ${loopRuns.map(cpuMips).join(', ')}`);
console.log(`model, L1 suite:     ${mips(suite)} MIPS (${suite.instructions} instructions in ${suite.seconds.toFixed(2)} s, ${l1.length} kernels); ${cpuMips(suite)} MIPS per CPU second`);
console.log(`L1 suite wall time, one job: model ${modelWall.toFixed(2)} s, qemu-tcg ${tcgWall.toFixed(2)} s, ratio model/qemu-tcg ${(modelWall / tcgWall).toFixed(2)}`);
console.log(`loop kernel wall time: model ${loop.seconds.toFixed(2)} s (run only), qemu-tcg ${loopTcg.toFixed(2)} s (boot included), ratio ${(loop.seconds / loopTcg).toFixed(2)}`);
