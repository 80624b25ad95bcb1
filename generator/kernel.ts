// From cases to bootable kernels: the runtime object, one object per case, a case table per kernel.
//
// Cases are batched per template and CPU configuration (a batch boots once with one CPUID), at
// most MAX_CASES_PER_KERNEL each so a crash costs one reboot of a short batch and parallel jobs
// have work to share.

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Case, CpuConfig, Kernel } from '../core/types.ts';
import { asmConstants } from '../arch/asm.ts';
import { asmPaging } from '../arch/paging.ts';
import { asmLayout, KERNEL_LOAD_ADDR } from './layout.ts';
import { assemble, link } from './toolchain.ts';
import type { Renderer } from './render.ts';
import { checkModelInstructions } from './isacheck.ts';

export const MAX_CASES_PER_KERNEL = 16;

export interface KernelPlan {
  id: string;
  cases: Case[];
  cpu: CpuConfig;
}

/** The CPU a case needs the backend to present: its feature parameters (nrips=on → shown). */
export function cpuConfigOf(c: Case): CpuConfig {
  const cpu: CpuConfig = {};
  for (const f of c.template.featureParams) cpu[f] = c.params[f] === 'on';
  return cpu;
}

function cpuKey(cpu: CpuConfig): string {
  return Object.entries(cpu).sort().map(([k, v]) => `${k}=${v ? 'on' : 'off'}`).join(',');
}

/** Group cases into kernels; ids are stable as long as the template's case list is. */
export function planKernels(cases: Case[], maxPerKernel = MAX_CASES_PER_KERNEL): KernelPlan[] {
  const groups = new Map<string, { template: string; cpu: CpuConfig; cases: Case[] }>();
  for (const c of cases) {
    const cpu = cpuConfigOf(c);
    const key = `${c.template.id}|${cpuKey(cpu)}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { template: c.template.id, cpu, cases: [] }));
    g.cases.push(c);
  }
  const plans: KernelPlan[] = [];
  for (const g of groups.values()) {
    const tag = cpuKey(g.cpu).replace(/=/g, '-').replace(/,/g, '.');
    for (let i = 0; i < g.cases.length; i += maxPerKernel) {
      const n = i / maxPerKernel;
      plans.push({ id: `${g.template}${tag ? `@${tag}` : ''}#${n}`, cases: g.cases.slice(i, i + maxPerKernel), cpu: g.cpu });
    }
  }
  return plans;
}

/** Global symbol of a case's entry: from its id, so one cached object serves every kernel. */
export function entrySymbol(caseId: string): string {
  return `case_${createHash('sha256').update(caseId).digest('hex').slice(0, 16)}`;
}

/** Assembly prelude every source gets: architectural constants and the runtime layout. */
function prelude(): string {
  return `${asmConstants()}${asmPaging()}${asmLayout()}`;
}

export function runtimeSource(renderer: Renderer): string {
  return `${prelude()}${renderer.renderPartial('runtime', {})}\n`;
}

/**
 * A case's source: the record layout as symbols (REC_<field> offset, REC_W_<field> width), the
 * case macros, an entry that first checks the CPU features the case needs (SKIP with the reason
 * if absent: the kernel must not trust the runner), then the template body.
 */
export function caseSource(renderer: Renderer, c: Case, index: number): string {
  const t = c.template;
  const layout = t.record.map((f) => `.set REC_${f.name}, ${f.offset}\n.set REC_W_${f.name}, ${f.size}`).join('\n');
  const checks = c.requires
    .map((r, i) => {
      const skip = `${r.present ? '' : 'no_'}${r.feature}`;
      return [
        `\tcall\tcpu_has_${r.feature}`,
        `\ttest\t%eax, %eax`,
        `\t${r.present ? 'jnz' : 'jz'}\t.Lreq_ok_${i}`,
        `\tlea\tstr_need_${skip}(%rip), %rdx`,
        `\tmov\t$CASE_SKIP, %eax`,
        `\tret`,
        `.Lreq_ok_${i}:`,
      ].join('\n');
    })
    .join('\n');
  return [
    prelude(),
    `.set REC_SIZE, ${t.recordSize}`,
    layout,
    renderer.renderPartial('case_macros', {}),
    '\t.text',
    `\t.globl\t${entrySymbol(c.id)}`,
    `${entrySymbol(c.id)}:`,
    'case_entry:',
    checks,
    renderer.renderCase(c, index),
    '',
  ].join('\n');
}

/** The per-kernel table the batch loop walks (templates/partials/batch.S.hbs: CASE_DESC_SIZE). */
export function caseTableSource(plan: KernelPlan): string {
  const quote = (s: string) => JSON.stringify(s); // ids are [A-Za-z0-9_.+=,/@#-]: JSON quoting is GAS quoting
  const rows = plan.cases.map((c, i) => `\t.quad ${entrySymbol(c.id)}, case_id_${i}, ${c.template.recordSize}`);
  const ids = plan.cases.map((c, i) => `case_id_${i}:\t.asciz ${quote(c.id)}`);
  return [
    '\t.section .rodata',
    '\t.globl kernel_id, case_count, case_table',
    `kernel_id:\t.asciz ${quote(plan.id)}`,
    '\t.balign 8',
    `case_count:\t.quad ${plan.cases.length}`,
    'case_table:',
    ...rows,
    ...ids,
    '',
  ].join('\n');
}

/**
 * One load segment from KERNEL_LOAD_ADDR; the multiboot header first (it must be in the first 8 KiB).
 * `.suite` (the return path to the suite loader, batch.S.hbs) goes last, after .bss, so that it
 * moves nothing else.
 */
export function linkerScript(): string {
  return `OUTPUT_FORMAT(elf64-x86-64)
ENTRY(_start)
SECTIONS
{
  . = 0x${KERNEL_LOAD_ADDR.toString(16)};
  .text : { *(.multiboot) *(.text.boot) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.*) }
  .data : { *(.data .data.*) }
  .bss : { __bss_start = .; *(.bss .bss.* COMMON) . = ALIGN(8); __bss_end = .; }
  .suite : { *(.suite) }
  /DISCARD/ : { *(.note.*) *(.comment) *(.eh_frame) }
}
`;
}

export interface BuildContext {
  renderer: Renderer;
  cacheDir: string;
  /** Runtime object, assembled once per build. */
  runtimeObject?: Promise<string>;
  /** Cases to hold to the reference model's instruction list (generator/isacheck.ts). */
  checkModel?: (c: Case) => boolean;
}

export async function buildKernel(ctx: BuildContext, plan: KernelPlan): Promise<Kernel> {
  ctx.runtimeObject ??= assemble(ctx.cacheDir, { source: runtimeSource(ctx.renderer), what: 'the runtime (templates/partials)', renderer: ctx.renderer }).then((a) => a.object);
  const runtime = await ctx.runtimeObject;
  const caseObjects = await Promise.all(
    plan.cases.map(async (c, i) => {
      const what = `case ${c.id}`;
      const source = caseSource(ctx.renderer, c, i);
      const a = await assemble(ctx.cacheDir, { source, what, renderer: ctx.renderer });
      if (ctx.checkModel?.(c)) checkModelInstructions(what, source, a.listing, ctx.renderer);
      return { path: a.object, what, source };
    }),
  );
  const table = (await assemble(ctx.cacheDir, { source: caseTableSource(plan), what: `case table of ${plan.id}`, renderer: ctx.renderer })).object;
  const out = await link(ctx.cacheDir, [runtime, table, ...caseObjects], linkerScript(), `kernel ${plan.id}`, ctx.renderer);
  return { id: plan.id, cases: plan.cases, cpu: plan.cpu, ...out };
}

export function defaultCacheDir(root: string): string {
  return join(root, 'build', 'cache');
}
