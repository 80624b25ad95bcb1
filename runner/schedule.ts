// The scheduler: runs every kernel on every backend and gives each case exactly one result per
// backend. Boots go through runner/backend.ts; what the serial lines mean comes from
// runner/protocol.ts; what to do when a boot ends early is docs/protocol.md, "What the runner
// makes of it": the running case gets CRASH or TIMEOUT and the kernel is booted again after it.

import { availableParallelism } from 'node:os';
import type { Backend, BootResult } from './backend.ts';
import type { BackendInfo, CaseResult, Feature, Kernel, Requirement, Status, TortureCounts } from '../core/types.ts';
import { NOT_REACHED, parseBoot } from './protocol.ts';
import { unavailableFeatures } from './probe.ts';

export interface ScheduledBackend {
  backend: Backend;
  info: BackendInfo;
}

export type ProgressEvent =
  | {
      type: 'case';
      caseId: string;
      kernel: string;
      backend: string;
      status: Status;
      /** The result itself (what a run stopped early still writes). */
      result: CaseResult;
      /** Results finished so far and in all (cases × backends), for counts and an ETA. */
      done: number;
      total: number;
      elapsedSeconds: number;
    }
  | {
      type: 'boot';
      kernel: string;
      backend: string;
      start: number;
      end?: number;
      /** How the boot ended, or `error` when the backend threw. */
      outcome: BootResult['end'] | 'error';
      detail: string;
      seconds: number;
      /** The boot's `--torture` counts (BootResult.torture), for the run's summary. */
      torture?: TortureCounts;
    };

export interface ScheduleOptions {
  /** Boots in flight at once (default: the number of cores). */
  jobs?: number;
  /**
   * A boot without a valid protocol line for this long is killed (TIMEOUT for the running case);
   * every boot also ends by runner/protocol.ts bootLimitMs at the latest.
   */
  idleTimeoutMs: number;
  onProgress?: (ev: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Boots allowed per kernel and backend (default: runnable cases + 1), so nothing loops. */
  maxBoots?: (runnable: number) => number;
}

/**
 * A backend's probe, never throwing: a probe that fails makes that backend unavailable with the
 * error as its reason, and the others are probed and run as usual.
 */
export async function probeSafely(backend: Backend): Promise<BackendInfo> {
  try {
    return await backend.probe();
  } catch (e) {
    const reason = `probe failed: ${e instanceof Error ? e.message : String(e)}`;
    return { name: backend.name, kind: backend.kind, available: false, reason, features: unavailableFeatures(reason) };
  }
}

/** caseId → backend name → result. */
export type ScheduleResults = Map<string, Record<string, CaseResult>>;

/** The first requirement a backend cannot meet, as the reason text of an UNSUPPORTED result. */
export function unmetRequirement(requires: readonly Requirement[], info: BackendInfo): string | undefined {
  for (const r of requires) {
    const f = info.features[r.feature];
    const can = r.present ? f?.present : f?.absent;
    if (!can) {
      const why = f?.reason || `${info.name} cannot ${r.present ? 'show' : 'hide'} ${r.feature}`;
      return `needs ${r.feature} ${r.present ? 'present' : 'absent'}: ${why}`;
    }
  }
  return undefined;
}

/** The kernel's cpu config is a requirement of every case in it (the boot asks for it). */
function kernelRequirements(kernel: Kernel): Requirement[] {
  return (Object.entries(kernel.cpu) as Array<[Feature, boolean | undefined]>)
    .filter(([, v]) => v !== undefined)
    .map(([feature, present]) => ({ feature, present: present! }));
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function runKernels(
  kernels: readonly Kernel[],
  backends: readonly ScheduledBackend[],
  opts: ScheduleOptions,
): Promise<ScheduleResults> {
  const results: ScheduleResults = new Map();
  for (const k of kernels) for (const c of k.cases) results.set(c.id, {});
  const total = results.size * backends.length;
  const t0 = performance.now();
  let done = 0;
  const emit = (ev: ProgressEvent): void => {
    try {
      opts.onProgress?.(ev);
    } catch {
      // A progress display must not break the run.
    }
  };

  const record = (kernel: Kernel, backend: string, caseId: string, r: CaseResult): void => {
    const row = results.get(caseId)!;
    if (row[backend] !== undefined) return; // exactly one result per case and backend
    row[backend] = r;
    done++;
    emit({
      type: 'case',
      caseId,
      kernel: kernel.id,
      backend,
      status: r.status,
      result: r,
      done,
      total,
      elapsedSeconds: (performance.now() - t0) / 1000,
    });
  };

  const pairs: Array<() => Promise<void>> = [];
  for (const kernel of kernels) {
    for (const sb of backends) {
      pairs.push(() => runPair(kernel, sb, opts, (id, r) => record(kernel, sb.info.name, id, r), emit));
    }
  }

  const jobs = Math.max(1, opts.jobs ?? availableParallelism());
  let nextPair = 0;
  const worker = async (): Promise<void> => {
    while (nextPair < pairs.length) {
      opts.signal?.throwIfAborted();
      const run = pairs[nextPair++]!;
      await run();
    }
  };
  // Every worker is waited for, also when one failed or the run was aborted: a boot in flight
  // kills its VMM and removes its files before its promise settles, and the run must not end first.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(jobs, pairs.length) }, worker));
  opts.signal?.throwIfAborted();
  for (const s of settled) if (s.status === 'rejected') throw s.reason;

  // Safety net: the loop above gives every case a result; if a bug ever left one out, say so
  // rather than let a missing result look like anything else.
  for (const kernel of kernels) {
    for (const c of kernel.cases) {
      for (const sb of backends) {
        record(kernel, sb.info.name, c.id, { status: 'ERROR', reason: 'internal: the scheduler gave no result' });
      }
    }
  }
  return results;
}

/** Run one kernel on one backend to completion: boots, parsing, resume after crashes. */
async function runPair(
  kernel: Kernel,
  { backend, info }: ScheduledBackend,
  opts: ScheduleOptions,
  record: (caseId: string, r: CaseResult) => void,
  emit: (ev: ProgressEvent) => void,
): Promise<void> {
  const ids = kernel.cases.map((c) => c.id);
  const have = new Set<string>();
  const set = (i: number, r: CaseResult): void => {
    const id = ids[i]!;
    if (have.has(id)) return;
    have.add(id);
    record(id, r);
  };

  if (!info.available) {
    ids.forEach((_, i) => set(i, { status: 'UNSUPPORTED', reason: info.reason || `${info.name} is not available` }));
    return;
  }
  // Cases the backend cannot give what they need are decided from the table and never run.
  const kreq = kernelRequirements(kernel);
  const unsupported = new Set<number>();
  kernel.cases.forEach((c, i) => {
    const why = unmetRequirement([...kreq, ...c.requires], info);
    if (why !== undefined) {
      unsupported.add(i);
      set(i, { status: 'UNSUPPORTED', reason: why });
    }
  });

  const runnable = ids.length - unsupported.size;
  const maxBoots = opts.maxBoots?.(runnable) ?? runnable + 1;
  const pending = (): number => ids.findIndex((id) => !have.has(id));
  let boots = 0;

  for (let start = pending(); start >= 0; start = pending()) {
    if (boots >= maxBoots) {
      for (let i = start; i < ids.length; i++) {
        set(i, { status: 'ERROR', reason: `not run: gave up after ${boots} boots of this kernel` });
      }
      break;
    }
    boots++;
    // Stop before the next unsupported case, so it never runs (the runtime honours end=N).
    let end: number | undefined;
    for (let i = start + 1; i < ids.length; i++) {
      if (unsupported.has(i)) {
        end = i;
        break;
      }
    }

    let br: BootResult;
    try {
      br = await backend.boot({
        kernel,
        start,
        ...(end !== undefined ? { end } : {}),
        cpu: kernel.cpu,
        idleTimeoutMs: opts.idleTimeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const why = `${info.name} failed: ${errorMessage(e)}`;
      emit({ type: 'boot', kernel: kernel.id, backend: info.name, start, ...(end !== undefined ? { end } : {}), outcome: 'error', detail: why, seconds: 0 });
      for (let i = start; i < ids.length; i++) set(i, { status: 'ERROR', reason: why });
      break;
    }
    emit({ type: 'boot', kernel: kernel.id, backend: info.name, start, ...(end !== undefined ? { end } : {}), outcome: br.end, detail: br.detail, seconds: br.seconds, ...(br.torture ? { torture: br.torture } : {}) });

    const stop = end ?? ids.length;
    const p = parseBoot(br.lines, ids, start, { kernelId: kernel.id, ...(end !== undefined ? { end } : {}) });
    const fresh: Array<[number, CaseResult]> = [];
    for (let i = start; i < stop; i++) {
      const r = p.cases.get(ids[i]!);
      if (r !== undefined && r !== NOT_REACHED && !have.has(ids[i]!)) {
        const cr: CaseResult = { status: r.status };
        if (r.record !== undefined) cr.record = r.record;
        // the SVM features this boot's kernel read from CPUID: the report judges the record by them
        if (r.status === 'OK' && p.cpuid !== undefined) cr.cpuidSvmEdx = p.cpuid.edx;
        const open = r.status === 'OK' ? br.open?.[ids[i]!] : undefined;
        if (open !== undefined) cr.open = open;
        if (r.status === 'OK' && r.record !== undefined && backend.maskFor) {
          const mask = backend.maskFor(kernel.cases[i]!, r.record, open);
          if (mask !== undefined) cr.mask = mask;
        }
        if (r.reason !== undefined) cr.reason = r.reason;
        fresh.push([i, cr]);
      }
    }

    if (p.firstUnfinished >= 0 && p.untrusted === undefined) {
      // (An untrusted boot blames no one for how it ended: its expected case has its ERROR, and
      // the cases after it run again in a new boot.)
      if (fresh.length === 0 && !p.begin) {
        // Not a single protocol line: the kernel never got to its first case, so no case is to
        // blame, and booting it again case by case would only repeat the failure.
        const why = `the kernel did not start (no BEGIN line): ${br.end}: ${br.detail}`;
        for (let i = start; i < stop; i++) if (!unsupported.has(i)) fresh.push([i, { status: 'ERROR', reason: why }]);
      } else {
        fresh.push([p.firstUnfinished, blame(p, br, opts.idleTimeoutMs)]);
      }
    }
    if (fresh.length === 0) {
      // Every boot must settle at least one case, or the loop could go on for ever.
      fresh.push([start, { status: 'ERROR', reason: `the boot settled no case: ${br.end}: ${br.detail}` }]);
    }
    const share = br.seconds / fresh.length;
    for (const [i, r] of fresh) set(i, { ...r, seconds: share, ...(br.note !== undefined ? { note: br.note } : {}), ...(br.torture ? { torture: br.torture } : {}) });
  }
}

/**
 * The result of the case that was running when the output stopped without END (or, with
 * `noEnd`, of the last case, whose line came but whose END did not).
 */
function blame(p: ReturnType<typeof parseBoot>, br: BootResult, idleTimeoutMs: number): CaseResult {
  const after = p.noEnd ? 'its CASE line came, then no END: ' : p.overlong !== undefined ? `${p.overlong}; ` : '';
  if (p.panic !== undefined) return { status: 'CRASH', reason: `${after}kernel PANIC: ${p.panic}` };
  if (p.restarted) return { status: 'CRASH', reason: `${after}the machine restarted while this case ran (${br.detail})` };
  switch (br.end) {
    case 'timeout':
      return {
        status: 'TIMEOUT',
        reason: `${after}${br.detail || `no valid protocol line for ${idleTimeoutMs / 1000} s`} (killed after ${br.seconds.toFixed(1)} s)`,
      };
    case 'crashed':
      return { status: 'CRASH', reason: `${after}${br.detail}` };
    case 'exited':
      // The VM left on purpose yet without this case's line or END: output went missing.
      return { status: 'ERROR', reason: p.noEnd ? `${after}the VM exited (${br.detail})` : `${after}no CASE line and no END; the VM exited (${br.detail})` };
  }
}
