// `svmconf tcghost`: download and build the kvm-tcg backend's guest (runner/tcghost/); --check
// boots it and prints what KVM offers there.

import type { Command } from 'commander';
import { kvmTcgBackend } from '../../runner/backends/kvm-tcg.ts';
import { downloadPackages, readyImage } from '../../runner/tcghost/image.ts';
import { EXIT, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('tcghost')
    .description("build the TCG host of the kvm-tcg backend (Debian's kernel and busybox-static via apt-get download, the helper linked statically); --check boots it and prints what KVM offers there")
    .option('--check', 'boot it and probe KVM in it')
    .action(async (o: { check?: boolean }) => setCode(await tcghost(o)));
}

export async function tcghost(o: { check?: boolean }): Promise<number> {
  const log = (m: string): void => void process.stdout.write(`${m}\n`);
  await downloadPackages(undefined, log);
  const image = await readyImage(undefined, log);
  log(`tcghost: ${image.manifest.kernelPackage}, ${image.manifest.busyboxPackage}; modules: ${image.manifest.modules.map((m) => m.file + (m.params ? ` ${m.params}` : '')).join(', ')}`);
  if (!o.check) return EXIT.AGREE;
  const info = await kvmTcgBackend().probe();
  log(`${info.name}: ${info.available ? `available — ${info.version}` : `unavailable — ${info.reason}`}`);
  if (info.cpu) log(`CPU: ${info.cpu.modelName ?? '?'} (family ${info.cpu.family.toString(16)}h model ${info.cpu.model.toString(16)}h; ${info.cpu.source})`);
  for (const [f, t] of Object.entries(info.features)) log(`  ${f}: ${t.present ? 'present' : `absent${t.reason ? ` (${t.reason})` : ''}`}`);
  return info.available ? EXIT.AGREE : EXIT.ERROR;
}
