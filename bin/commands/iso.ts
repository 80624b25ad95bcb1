// `svmconf iso`: the bootable suite image (GRUB, BIOS and UEFI), every kernel in one boot, the
// protocol on COM1 (generator/iso.ts); the console backend runs it on a real machine.

import { Option, type Command } from 'commander';
import { join, relative, resolve } from 'node:path';
import { buildKernels, makeRenderer, ROOT } from '../../generator/index.ts';
import { buildIso } from '../../generator/iso.ts';
import { defaultCacheDir } from '../../generator/kernel.ts';
import { UsageError } from '../../suite/errors.ts';
import { selectCases, type CaseSelection } from '../../suite/select.ts';
import { EXIT, selection, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  selection(p.command('iso').description('build the bootable suite image (GRUB, BIOS and UEFI): every kernel in one boot, protocol on COM1'))
    .option('--out <file>', 'the image', join(ROOT, 'out', 'svmconf.iso'))
    .addOption(new Option('--menu-timeout <seconds>', 'seconds the GRUB menu waits before the full suite').argParser(Number).default(5))
    .action(async (o) => setCode(await iso({ ...o, out: resolve(o.out) })));
}

export async function iso(o: CaseSelection & { out: string; menuTimeout: number }): Promise<number> {
  if (!Number.isInteger(o.menuTimeout) || o.menuTimeout < 0) throw new UsageError('--menu-timeout: expected a whole number of seconds');
  const cases = await selectCases(o);
  const kernels = await buildKernels(cases, { extraDirs: o.templates });
  const image = await buildIso(kernels, { renderer: await makeRenderer(o.templates), cacheDir: defaultCacheDir(ROOT), out: o.out, timeout: o.menuTimeout });
  process.stdout.write(`${relative(process.cwd(), image) || image}: ${kernels.length} kernel(s), ${cases.length} case(s), BIOS and UEFI\n`);
  return EXIT.AGREE;
}
