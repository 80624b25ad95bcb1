// What a backend is: something that can say whether it can run here, and boot a kernel once.
// The scheduler (runner/schedule.ts) turns boots into per-case results; backends know nothing of cases.

import type { BackendInfo, BackendKind, Case, CpuConfig, Kernel, TortureCounts } from '../core/types.ts';

export interface BootRequest {
  kernel: Kernel;
  /** Index of the first case to run (multiboot command line `start=N`). */
  start: number;
  /**
   * Index after the last case to run (command line `end=N`, docs/protocol.md); absent = to the end.
   * The scheduler sets it so that a case the backend cannot support is never run.
   */
  end?: number;
  cpu: CpuConfig;
  /** Kill the boot when no serial output arrived for this long. */
  idleTimeoutMs: number;
  /** Called with every complete serial line as it arrives (CR stripped). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * How a boot ended.
 *   exited   the VM left on its own (debug-exit port, shutdown port, VMM exit)
 *   timeout  no output for idleTimeoutMs; the VM was killed
 *   crashed  the VMM reported a failure (KVM internal error, failed entry, triple fault seen as reset)
 */
export interface BootResult {
  end: 'exited' | 'timeout' | 'crashed';
  /** Every serial line, CR stripped, in order. */
  lines: string[];
  /** Human-readable detail: exit status, the VMM's error text, the timeout. */
  detail: string;
  seconds: number;
  /**
   * Something about how the boot ran that every case it settled should carry into results.json
   * (CaseResult.note), e.g. the native KVM runner's `torture: N restores`.
   */
  note?: string;
  /** The native KVM runner's `--torture` counts (the numbers of its note), carried into CaseResult.torture. */
  torture?: TortureCounts;
  /**
   * Case id → why the manual leaves that case's outcome open, for the cases where the model met
   * such a situation (model/svm/open.ts); carried into CaseResult.open. Only the model knows.
   */
  open?: Readonly<Record<string, string>>;
}

export interface Backend {
  readonly name: string;
  /** What its records are (BackendInfo.kind): its probe says so, and so does a probe that failed. */
  readonly kind: BackendKind;
  probe(): Promise<BackendInfo>;
  boot(req: BootRequest): Promise<BootResult>;
  /**
   * The defined-bits mask (hex, CaseResult.mask) of an OK record of `c`, for a backend that knows
   * which bits the manual defines (the model); undefined: every bit. `open`: the boot found the
   * case's outcome open (BootResult.open), so no bit is defined.
   */
  maskFor?(c: Case, record: string, open?: string): string | undefined;
}
