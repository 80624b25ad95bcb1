// `svmconf record`: a run's hardware records into expected/hw/<family>/<cpu>/ with their
// provenance (report/hwrecords.ts), to contribute them.

import type { Command } from 'commander';
import { resolve } from 'node:path';
import { recordHardware } from '../../report/hwrecords.ts';
import { readResultsFile } from '../../report/results.ts';
import { EXIT, shownPath, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('record')
    .description("store a run's hardware records under expected/hw/<family>/<cpu>/ with their provenance, to contribute them")
    .argument('<results>', 'results.json of a run with a hardware backend (kvm, qemu-kvm, console)')
    .option('--backend <name>', 'the backend to record (default: the run\'s only hardware backend)')
    .option('--force', 'record an emulator or the model anyway (PROVENANCE.json then says forced: not hardware truth)')
    .option('--hw <dir>', 'where recordings go (default: expected/hw)')
    .action(async (file: string, o) => setCode(await record(file, o)));
}

export async function record(file: string, o: { backend?: string; force?: boolean; hw?: string }): Promise<number> {
  const results = await readResultsFile(file);
  const command = ['svmconf', ...process.argv.slice(2)].join(' ');
  const r = await recordHardware(results, { source: file, ...(o.backend ? { backend: o.backend } : {}), force: o.force === true, command, ...(o.hw ? { dir: resolve(o.hw) } : {}) });
  process.stdout.write(`${shownPath(r.dir)}: ${r.cases} case(s) of ${r.backend} on ${r.cpu.modelName ?? 'the CPU'} (${r.cpu.familyName}), ${r.files.length} file(s) and PROVENANCE.json${r.forced ? ' — FORCED: not a hardware backend, the provenance says so' : ''}\n`);
  process.stdout.write('review with `git diff expected/hw/` and commit it to contribute the records\n');
  return EXIT.AGREE;
}
