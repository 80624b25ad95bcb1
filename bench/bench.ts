// make bench: speed measured, never asserted. Each figure comes from this one run, and every
// ratio is between backends measured here and now (docs/performance.md "How `make bench` measures").
//   1. the model's MIPS on a straight-line loop kernel (bench/templates/loop.S.hbs), run
//      LOOP_RUNS times in this process, each on a fresh Machine: the first run includes V8's
//      warm-up (compilation, and a first machine that runs measurably slower: docs/performance.md
//      "How `make bench` measures"), so every run is printed, and the median is the figure
//   2. the model's MIPS over the L1 suite (instructions counted by the model)
//   3. wall time of the L1 suite under the model and under qemu-tcg, and their ratio
//   4. per L1 kernel, the boot time (all boots of that kernel summed) under the native kvm runner,
//      qemu-kvm, qemu-tcg and kvm-tcg (the same helper on KVM inside QEMU TCG: its figures are
//      TCG's speed plus the spool's round trip, the guest's own boot not counted), from one run of
//      each; a backend unavailable here prints `<name>: unavailable — <reason>` instead of figures
//   5. wall time per L1 kernel under each Bochs flavour
// The model's MIPS are given by wall time and by the process's CPU time (process.cpuUsage, which
// also counts V8's helper threads: a conservative figure). On a shared machine the wall-time
// figure falls with the load, the CPU-time one much less; the load average is printed with them.

import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { buildKernels, expandAll, filterCases, loadTemplates, ROOT } from '../generator/index.ts';
import { Machine } from '../model/machine.ts';
import { GUEST_RAM_MIB } from '../generator/layout.ts';
import { qemuKvmBackend, qemuTcgBackend } from '../runner/backends/qemu.ts';
import { kvmNativeBackend } from '../runner/backends/kvm.ts';
import { kvmTcgBackend, stopTcgHost } from '../runner/backends/kvm-tcg.ts';
import type { Backend } from '../runner/backend.ts';
import { modelBackend } from '../runner/backends/model.ts';
import { bochsBackends } from '../runner/backends/bochs.ts';
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

async function wall(kernels: Kernel[], backend: Backend): Promise<number> {
  const info = await backend.probe();
  if (!info.available) throw new Error(`${backend.name} unavailable: ${info.reason}`);
  const t = performance.now();
  await runKernels(kernels, [{ backend, info }], { jobs: 1, idleTimeoutMs: 60_000 });
  return (performance.now() - t) / 1000;
}

/** Seconds per kernel (its boots summed) for one run of `kernels` on `backend`, or why it cannot run. */
interface Timed {
  seconds: Map<string, number>;
  total: number;
}
async function perKernel(kernels: Kernel[], backend: Backend): Promise<{ reason: string } | Timed> {
  const info = await backend.probe();
  if (!info.available) return { reason: info.reason };
  const seconds = new Map<string, number>();
  const t = performance.now();
  await runKernels(kernels, [{ backend, info }], {
    jobs: 1,
    idleTimeoutMs: 60_000,
    onProgress: (ev) => {
      if (ev.type === 'boot') seconds.set(ev.kernel, (seconds.get(ev.kernel) ?? 0) + ev.seconds);
    },
  });
  return { seconds, total: (performance.now() - t) / 1000 };
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

// 4. the native runner against the stock stack and TCG, kernel by kernel
const per: Array<[string, { reason: string } | Timed]> = [
  ['kvm', await perKernel(l1, kvmNativeBackend())],
  ['qemu-kvm', await perKernel(l1, qemuKvmBackend())],
  ['qemu-tcg', await perKernel(l1, qemuTcgBackend())],
  ['kvm-tcg', await perKernel(l1, kvmTcgBackend())],
];
await stopTcgHost();
for (const [name, r] of per) if ('reason' in r) console.log(`${name}: unavailable — ${r.reason}`);
const ran = per.filter((p): p is [string, Timed] => !('reason' in p[1]));
if (ran.length > 0) {
  console.log(`L1 per kernel, seconds of boot (one job): ${ran.map(([n]) => n).join(' | ')}`);
  for (const k of l1) console.log(`  ${k.id.padEnd(28)} ${ran.map(([, r]) => (r.seconds.get(k.id) ?? NaN).toFixed(4)).join(' | ')}`);
  console.log(`  ${'total wall'.padEnd(28)} ${ran.map(([, r]) => r.total.toFixed(3)).join(' | ')}`);
  const kvm = ran.find(([n]) => n === 'kvm')?.[1];
  for (const [n, r] of ran) if (kvm && n !== 'kvm') console.log(`  ratio ${n}/kvm over the L1 suite: ${(r.total / kvm.total).toFixed(1)}`);
  const tcg = ran.find(([n]) => n === 'qemu-tcg')?.[1];
  const kvmTcg = ran.find(([n]) => n === 'kvm-tcg')?.[1];
  if (tcg && kvmTcg) console.log(`  ratio qemu-tcg/kvm-tcg over the L1 suite: ${(tcg.total / kvmTcg.total).toFixed(1)} (a QEMU boot per kernel against a VM created by the helper, both under TCG)`);
}

/**
 * 5. Bochs: wall time per L1 kernel (one boot each, BIOS included) on each flavour, one job;
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
