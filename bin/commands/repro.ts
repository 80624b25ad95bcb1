// `svmconf repro <case-id> --backend <name>`: a folder that reproduces one case on one backend
// without svmconf (docs/repro.md): the case's own kernel, a script that boots the peer and compares
// the record with the observed one, both records decoded, the template's checks and a report
// (suite/repro.ts makes it, report/repro.ts renders it).

import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { makeRepro } from '../../suite/repro.ts';
import { EXIT, interruptible, positiveInt, repeat, shownPath, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('repro')
    .description('write a self-contained folder that reproduces one case on one backend (a script, the kernel, both records decoded, a report)')
    .argument('<case-id>', 'the whole case id, e.g. l1.icebp/prefix=none')
    .requiredOption('--backend <name>', 'the column: qemu-tcg, qemu-tcg@11.1, qemu-kvm, bochs-ryzen, bochs-phenom(@3.1), kvm, kvm-tcg(@7.3…)')
    .option('--out <dir>', 'the folder (default out/repro/<case id with / and , as _>-<backend>/)')
    .option('--results <file>', 'take the observed record from this results.json instead of running the case now')
    .option('--force', 'replace the folder when it is not empty')
    .option('--templates <dir>', 'also load templates from this folder (repeatable)', repeat, [])
    .option('--deviations <file>', 'a deviation registry added to expected/deviations.yaml (repeatable)', repeat, [])
    .option('--profile <name>', "the model's CPU profile for the run (default: the run's default)")
    .addOption(new Option('--timeout <seconds>', 'a boot with no protocol output for this long is TIMEOUT (the run)').argParser(positiveInt).default(30))
    .addOption(new Option('--script-timeout <seconds>', "the script's bound on its boot").argParser(positiveInt).default(120))
    .action(async (caseId: string, o) => setCode(await repro(caseId, o)));
}

export async function repro(
  caseId: string,
  o: { backend: string; out?: string; results?: string; force?: boolean; templates: string[]; deviations: string[]; profile?: string; timeout: number; scriptTimeout: number },
): Promise<number> {
  const r = await interruptible((signal) => makeRepro({
    caseId,
    backend: o.backend,
    ...(o.out ? { out: resolve(o.out) } : {}),
    ...(o.results ? { results: o.results } : {}),
    ...(o.force ? { force: true } : {}),
    templates: o.templates,
    deviations: o.deviations,
    ...(o.profile !== undefined ? { profile: o.profile } : {}),
    timeout: o.timeout,
    scriptTimeout: o.scriptTimeout,
    signal,
    log: (l) => process.stderr.write(`${l}\n`),
  }));
  const bytes = r.files.reduce((n, f) => n + f.bytes, 0);
  process.stdout.write(`${shownPath(r.dir)}: ${r.files.length} files, ${(bytes / 1e6).toFixed(1)} MB; ${o.backend} ${r.observed.status}, ${r.verdict}\n`);
  process.stdout.write(`run it: sh ${shownPath(resolve(r.dir, r.script))}   read: ${shownPath(resolve(r.dir, 'report.txt'))}\n`);
  return EXIT.AGREE;
}
