// The `model` backend: the reference model (model/) runs the same multiboot kernels in process.
// It runs in slices so the event loop (progress, other backends' boots) keeps moving, and it
// applies the same limits as the emulators (runner/lines.ts BootWatch), polled between slices.

import { readFile } from 'node:fs/promises';
import { BootWatch, bootCases } from '../lines.ts';
import type { BackendInfo, Feature } from '../../core/types.ts';
import type { Backend, BootRequest, BootResult } from '../backend.ts';
import { PREFIX } from '../protocol.ts';
import { Machine } from '../../model/machine.ts';
import { GUEST_RAM_MIB } from '../../generator/layout.ts';
import { DEFAULT_PROFILE, profileFeatures, svmSwitches, withoutFeatures, type Profile } from '../../model/profile.ts';
import type { CpuConfig } from '../../core/types.ts';
import { cpuConfigOf } from '../../generator/kernel.ts';
import { openRecordMask, recordMask } from '../../model/svm/masks.ts';
import { takeOpenOutcomes } from '../../model/svm/open.ts';
import { VirtualL0 } from '../../model/l0/l0.ts';
import { setMutants, type MutantName } from '../../model/mutants.ts';

/** Instructions between two looks at the clock and the event loop. */
const SLICE = 500_000;

export interface ModelBackendOptions {
  /** Hard cap on instructions per boot, whatever the clock says. */
  maxInstructions?: number;
  /** The CPU profile (model/profiles/); default DEFAULT_PROFILE (amd-19h). */
  profile?: Profile;
  /**
   * Run under the virtual L0 (model/l0/): a hypervisor below the model that faults guest pages in
   * on first touch and re-injects the events whose delivery that interrupted. Backend `model-l0`.
   */
  l0?: boolean;
  /** Mutants to switch on (model/mutants.ts); the backend is then named `model+<mutants>`. */
  mutants?: readonly MutantName[];
  /** The backend's name, when not derived from the options (a reference column: `model@amd-10h`). */
  name?: string;
}

/** The profile a boot runs under: the chosen one with the features the kernel needs hidden removed from CPUID. */
export function bootProfile(profile: Profile, cpu: CpuConfig): Profile {
  const hide = (['svm', 'npt', 'nrips'] as Feature[]).filter((f) => cpu[f] === false);
  return withoutFeatures(profile, hide);
}

/** The protocol's CASE line prefix (runner/protocol.ts): the case id is its third word. */
const CASE_LINE = `${PREFIX}CASE `;

const withOpen = (open: Record<string, string>): { open?: Record<string, string> } => (Object.keys(open).length > 0 ? { open } : {});

export function modelBackend(opts: ModelBackendOptions = {}): Backend {
  const maxInstructions = opts.maxInstructions ?? 2_000_000_000;
  const profile = opts.profile ?? DEFAULT_PROFILE;
  const mutants = opts.mutants ?? [];
  const name = opts.name ?? `model${opts.l0 ? '-l0' : ''}${mutants.length ? `+${mutants.join('+')}` : ''}`;
  return {
    name,
    kind: 'model',
    // which bits of a record the manual defines in the case's situation (model/svm/masks.ts),
    // under the profile the case's boot ran with
    maskFor: (c, record, open) =>
      open !== undefined ? openRecordMask(record) : recordMask(c.template.record, record, svmSwitches(bootProfile(profile, cpuConfigOf(c)))),
    async probe(): Promise<BackendInfo> {
      // what the profile's CPUID presents is what the model can show (model/profile.ts: the part's
      // CPUID minus what the model does not implement); any of it can be hidden from CPUID, as a
      // VMM hides features from its guest (bootProfile)
      const offered = profileFeatures(profile);
      const features = {} as BackendInfo['features'];
      for (const f of ['svm', 'npt', 'nrips'] as Feature[]) {
        features[f] = offered[f]
          ? { present: true, absent: true, reason: `profile ${profile.name} has ${f}; hidden from CPUID when a case needs it absent` }
          : { present: false, absent: true, reason: `profile ${profile.name} has no ${f}` };
      }
      const under = opts.l0 ? ', under the virtual L0' : '';
      return { name, kind: 'model', available: true, reason: '', features, version: `svmconf model (profile ${profile.name}${under})` };
    },
    async boot(req: BootRequest): Promise<BootResult> {
      const started = performance.now();
      const elf = await readFile(req.kernel.elf);
      // the same limits as every backend's (docs/protocol.md "Limits"), polled between slices
      const watch = new BootWatch({
        idleTimeoutMs: req.idleTimeoutMs, cases: bootCases(req), vmm: 'the model', timers: false,
        ...(req.onLine ? { onLine: req.onLine } : {}),
      });
      const lines = watch.lines;
      // outcomes the manual leaves open (model/svm/open.ts), by the case whose line followed them
      const open: Record<string, string> = {};
      // the L0 runs on the hardware the profile describes, whatever it hides from L1's CPUID
      const outer = opts.l0 ? new VirtualL0({ nrips: svmSwitches(profile).nrips, mutants }) : undefined;
      const m = new Machine({
        ramBytes: GUEST_RAM_MIB * 1024 * 1024,
        profile: bootProfile(profile, req.kernel.cpu),
        outer,
        onLine: (line) => {
          if (line.startsWith(CASE_LINE)) {
            const why = takeOpenOutcomes(m.cpu);
            if (why.length > 0) open[line.split(' ')[2] ?? ''] = why.join('; ');
          }
          watch.countLine(line);
        },
      });
      // the guest RAM goes back to the pool however the boot ends (a fresh 128 MiB per boot costs GC time)
      try {
        const cmdline = `start=${req.start}${req.end !== undefined ? ` end=${req.end}` : ''}`;
        m.loadMultiboot(new Uint8Array(elf), cmdline);
        setMutants(m.cpu, mutants);
        const seconds = () => (performance.now() - started) / 1000;
        for (let executed = 0; executed < maxInstructions; executed += SLICE) {
          const r = m.run(SLICE);
          switch (r.end) {
            case 'exited': {
              const l0 = outer ? `; L0: ${outer.stats.exits} exit(s) during delivery, ${outer.stats.reinjected} re-injected, ${outer.stats.retried} retried` : '';
              return { end: 'exited', lines, detail: `debug-exit status ${r.status}${l0}`, seconds: seconds(), ...withOpen(open) };
            }
            case 'shutdown':
              return { end: 'crashed', lines, detail: `triple fault (shutdown): ${r.why}`, seconds: seconds(), ...withOpen(open) };
            case 'stopped':
              return { end: 'crashed', lines, detail: r.why, seconds: seconds(), ...withOpen(open) };
            case 'budget':
              break;
          }
          req.signal?.throwIfAborted();
          const over = watch.check();
          if (over !== undefined) {
            return { end: 'timeout', lines, detail: `${over} (${m.cpu.instructions} instructions, RIP ${m.cpu.rip.toString(16)})`, seconds: seconds() };
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        return { end: 'timeout', lines, detail: `instruction budget of ${maxInstructions} exhausted`, seconds: seconds() };
      } finally {
        m.dispose();
      }
    },
  };
}
