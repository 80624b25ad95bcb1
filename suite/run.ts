// `svmconf run` and `svmconf parse-log` as one pipeline over the stages: select the cases, probe
// the backends (with their CPUs, suite/backends.ts), build the kernels (generator/), run them
// (runner/schedule.ts, a console's whole suite image in one boot), compare the records (report/),
// compare the warm/cold twins, and write results.json and matrix.md atomically. It returns what it
// made; the CLI prints it (bin/commands/run.ts).

import { join } from 'node:path';
import type { CaseResult, CpuIdentity, Results } from '../core/types.ts';
import { buildKernels } from '../generator/index.ts';
import { CONSOLE_BACKEND, type ConsoleBackend } from '../runner/backends/console.ts';
import { readConsoleLog } from '../runner/backends/console-log.ts';
import { probeHostInfo } from '../runner/probe.ts';
import { runKernels } from '../runner/schedule.ts';
import { compareResults, deviationsByCase, runExitCode, type Comparison } from '../report/compare.ts';
import type { Deviation } from '../report/deviations.ts';
import { readHwFamily } from '../report/hwrecords.ts';
import { renderMarkdown } from '../report/markdown.ts';
import { buildMatrix } from '../report/publish.ts';
import { renderRecordedSection } from '../report/publish-render.ts';
import { buildResults, serializeResults, writeFileAtomic, writeResults } from '../report/results.ts';
import { runCpu } from '../report/run-cpu.ts';
import { compareWarmCold } from '../report/warmcold.ts';
import { probeWithCpus, type BackendChoice } from './backends.ts';
import { checkOutDir, saveInTemp, writeOutputs } from './output.ts';
import { loadRegistry, selectCases, type CaseSelection } from './select.ts';

export interface RunOptions extends CaseSelection, BackendChoice {
  /** Deviation registry files added to expected/deviations.yaml and the template folders' own. */
  deviations?: string[];
  jobs: number;
  /** Seconds without output before a boot is TIMEOUT. */
  timeout: number;
  /** Where results.json and matrix.md go (absolute). */
  out: string;
}

/** Where the pipeline reports progress (bin/progress.ts createProgress gives one). */
export interface RunProgress {
  caseDone(status: string, backend: string): void;
  note(text: string): void;
  end(): void;
}

export interface RunOutcome {
  results: Results;
  deviations: Deviation[];
  comparison: Comparison;
  /** The CPU family the run is filed under (report/run-cpu.ts), and whether hardware is recorded for it. */
  family: CpuIdentity;
  recordedRuns: number;
  /** The model against that recorded hardware (matrix.md's last section); empty without recordings. */
  recordedSection: string[];
  paths: { results: string; matrix: string };
  /** A final write that failed: which file, why, and where the results are instead. */
  writeFailure?: string;
  /** 0 agree, 1 diverge, 2 problems (report/compare.ts runExitCode). */
  exitCode: 0 | 1 | 2;
}

/** The `--torture` summary line over the boots that reported counts (BootResult.torture). */
function tortureLine(boots: number, restores: number, control: boolean | undefined): string {
  return control
    ? `--torture --torture-control: ${restores} forced exits over ${boots} boots, no save/restore`
    : `--torture: ${restores} save/restore cycles over ${boots} boots`;
}

export async function runSuite(o: RunOptions, createProgress: (total: number) => RunProgress): Promise<RunOutcome> {
  const cases = await selectCases(o);
  const deviations = await loadRegistry({ files: o.deviations ?? [], templateDirs: o.templates });
  // before anything runs: a run whose results cannot be written is lost
  await checkOutDir(o.out);
  const host = await probeHostInfo();
  const { backends, note: profileNote } = await probeWithCpus(o, host);
  const progress = createProgress(cases.length * backends.length);
  if (profileNote) progress.note(profileNote);
  for (const { info } of backends) progress.note(`backend ${info.name}: ${info.available ? 'available' : 'unavailable'}${info.reason ? ` — ${info.reason}` : ''}`);
  const kernels = await buildKernels(cases, { extraDirs: o.templates });
  progress.note(`built ${kernels.length} kernel(s) for ${cases.length} case(s)`);
  // A configured console runs the whole suite image in one boot (runner/backends/console.ts).
  const consoles = backends.filter((b) => b.info.name === CONSOLE_BACKEND && b.info.available);
  const torture = { boots: 0, restores: 0 };
  const byCase = await runKernels(kernels, backends.filter((b) => !consoles.includes(b)), {
    jobs: o.jobs,
    idleTimeoutMs: o.timeout * 1000,
    onProgress: (ev) => {
      if (ev.type === 'case') progress.caseDone(ev.status, ev.backend);
      else if (ev.torture) {
        // the native runner's torture counts, summed over its boots
        torture.boots++;
        torture.restores += ev.torture.restores;
      }
    },
  });
  if (torture.boots > 0) progress.note(tortureLine(torture.boots, torture.restores, o.tortureControl));
  for (const { backend, info } of consoles) {
    const run = await (backend as ConsoleBackend).runSuite(kernels, {
      idleTimeoutMs: o.timeout * 1000,
      onCase: (_id, status) => progress.caseDone(status, info.name),
    });
    progress.note(`${info.name}: ${run.end} (${run.detail}) after ${run.seconds.toFixed(1)} s`);
    for (const [id, r] of run.results) {
      const row = byCase.get(id) ?? {};
      row[info.name] = r;
      byCase.set(id, row);
    }
  }
  progress.end();
  const runs = cases.map((c) => {
    const results: Record<string, CaseResult> = { ...(byCase.get(c.id) ?? {}) };
    // a case that produced no result is an error, never a pass
    for (const { info } of backends) results[info.name] ??= { status: 'ERROR', reason: 'no result from the runner' };
    // nor is a record of another length than the template's layout: it is not this case's record
    for (const [name, r] of Object.entries(results)) {
      if (r.status === 'OK' && r.record !== undefined && r.record.length !== 2 * c.template.recordSize) {
        results[name] = { ...r, status: 'ERROR', reason: `an OK record of ${r.record.length / 2} bytes, but the layout of ${c.template.id} has ${c.template.recordSize}` };
      }
    }
    return { case: c, results };
  });
  const results = buildResults({ host, backends: backends.map((b) => b.info), runs });
  const comparison = compareResults(results, { deviations });
  results.deviations = deviationsByCase(comparison);
  const warmCold = compareWarmCold(results);
  if (warmCold.pairs > 0) results.warmCold = warmCold;
  const paths = { results: join(o.out, 'results.json'), matrix: join(o.out, 'matrix.md') };
  // the model against the hardware recorded for this run's family (expected/hw/<family>/), when there is any
  const family = runCpu(results.backends, results.host);
  const recs = await readHwFamily(family.familySlug);
  const recordedSection = recs.length
    ? renderRecordedSection(buildMatrix([{ source: 'this run', results }], { deviations, recorded: new Map([[family.familySlug, recs]]) }).families[0]!)
    : [];
  // a write that fails (a full disk, a folder made read-only since the check) loses nothing silently:
  // results.json goes to the temporary folder instead, and the message says where
  const writeFailure = await writeOutputs([
    {
      path: paths.results,
      write: () => writeResults(paths.results, results),
      rescue: async () => {
        paths.results = await saveInTemp('results.json', serializeResults(results));
        return `the results are in ${paths.results} instead`;
      },
    },
    {
      path: paths.matrix,
      write: () => writeFileAtomic(paths.matrix, renderMarkdown(results, { deviations, comparison }) + (recordedSection.length ? `\n${recordedSection.join('\n')}` : '')),
      rescue: async () => `${paths.results} is whole (\`svmconf compare ${paths.results} --out <dir>\` writes matrix.md again)`,
    },
  ]);
  return {
    results, deviations, comparison, family, recordedRuns: recs.length, recordedSection, paths,
    ...(writeFailure ? { writeFailure } : {}),
    exitCode: writeFailure ? 2 : runExitCode(comparison.summary, results.warmCold),
  };
}

/** `svmconf parse-log`: a captured serial log of the suite image (absolute path) as the console's run, the model beside it unless `model` is false. */
export async function parseLog(
  log: string,
  o: CaseSelection & Pick<BackendChoice, 'profile' | 'machineCpu' | 'machineName'> & { model?: boolean; deviations?: string[]; out: string },
  createProgress: (total: number) => RunProgress,
): Promise<RunOutcome> {
  await readConsoleLog(log); // a log that cannot be read fails before the model runs
  return runSuite({ ...o, consoleLog: log, backend: o.model === false ? [CONSOLE_BACKEND] : ['model', CONSOLE_BACKEND], jobs: 1, timeout: 30 }, createProgress);
}
