// `svmconf publish`: results files of several machines and runs read, the CPUs of files from
// before family detection filled in from what the runner knows of its backends (withCpus), merged
// into one matrix per CPU family with the hardware recorded for each family (report/publish.ts,
// report/hwrecords.ts), and written as matrix.md, matrix.html, matrix.json and junit.xml, and with
// --kcidb as a KCIDB report (report/kcidb.ts).

import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import type { Results } from '../core/types.ts';
import { DEFAULT_PROFILE, findProfile } from '../model/profile.ts';
import { backendCpu } from '../runner/cpu.ts';
import type { Deviation } from '../report/deviations.ts';
import { HW_DIR, readHwFamily, type HwRecording } from '../report/hwrecords.ts';
import { writeKcidb } from '../report/kcidb.ts';
import { buildMatrix, modelProfileOf, type Matrix, type PublishInput } from '../report/publish.ts';
import { writePublished } from '../report/publish-render.ts';
import { readResultsFile, serializeResults } from '../report/results.ts';
import { checkOutDir } from './output.ts';
import { loadRegistry } from './select.ts';

/**
 * LEGACY: backends' CPUs filled in for results written before family detection (BackendInfo.cpu
 * absent), as the runner would have stamped them (runner/cpu.ts backendCpu). A console's machine
 * is known only from --machine-cpu at run time, so it stays without.
 */
export function withCpus(results: Results): Results {
  if (results.backends.every((b) => b.cpu || b.name === 'console')) return results;
  const backends = results.backends.map((b) => {
    if (b.cpu) return b;
    const profile = findProfile(modelProfileOf(b)) ?? DEFAULT_PROFILE;
    const cpu = backendCpu(b, { host: results.host, profile });
    return cpu ? { ...b, cpu } : b;
  });
  return { ...results, backends };
}

export interface PublishRequest {
  /** The results files, each with the name it goes by in the matrix (its path as the user gave it). */
  files: Array<{ file: string; source: string }>;
  /** Deviation registry files added to expected/deviations.yaml. */
  deviations?: string[];
  /** Recorded hardware (default expected/hw). */
  hw?: string;
  /** Where the matrix files go. */
  out: string;
  /** Where the KCIDB report goes (report/kcidb.ts), when one is wanted. */
  kcidb?: string;
}

export interface PublishOutcome {
  matrix: Matrix;
  deviations: Deviation[];
  /** The files written, by format. */
  paths: Record<string, string>;
  /** What was left out and why (a run given twice). */
  notes: string[];
}

export async function publishRuns(r: PublishRequest): Promise<PublishOutcome> {
  await checkOutDir(r.out);
  if (r.kcidb) await checkOutDir(dirname(r.kcidb), '--kcidb');
  const inputs: PublishInput[] = [];
  // one run given twice (the same file, or a copy of it) is counted once
  const seen = new Map<string, string>();
  const notes: string[] = [];
  for (const f of r.files) {
    const results = await readResultsFile(f.file);
    const identity = createHash('sha256').update(serializeResults(results)).digest('hex');
    const first = seen.get(identity);
    if (first !== undefined) {
      notes.push(first === f.source ? `${f.source} is given twice: counted once` : `${f.source} is the same run as ${first}: counted once`);
      continue;
    }
    seen.set(identity, f.source);
    inputs.push({ source: f.source, results: withCpus(results) });
  }
  const deviations = await loadRegistry({ files: r.deviations ?? [] });
  const prelim = buildMatrix(inputs, { deviations });
  const recorded = new Map<string, HwRecording[]>();
  for (const fam of prelim.families) {
    const recs = await readHwFamily(fam.slug, r.hw ?? HW_DIR);
    if (recs.length) recorded.set(fam.slug, recs);
  }
  const matrix = recorded.size ? buildMatrix(inputs, { deviations, recorded }) : prelim;
  const paths: Record<string, string> = await writePublished(r.out, matrix, deviations);
  if (r.kcidb) paths.kcidb = await writeKcidb(r.kcidb, matrix, deviations);
  return { matrix, deviations, paths, notes };
}
