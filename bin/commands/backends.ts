// `svmconf backends`: what each backend can do on this machine, and why not (suite/backends.ts
// probeAll over every backend, as they are).

import type { Command } from 'commander';
import { DEFAULT_PROFILE } from '../../model/profile.ts';
import { consoleOptions, probeAll } from '../../suite/backends.ts';
import { EXIT, type SetCode } from './common.ts';

export function register(p: Command, setCode: SetCode): void {
  p.command('backends')
    .description('what each backend can do on this machine, and why not')
    .option('--json', 'machine-readable output')
    .option('--console-cmd <command>', 'console backend: the command attaching to the serial console')
    .option('--boot-cmd <command>', 'console backend: the command booting the machine')
    .action(async (o) => setCode(await backends(o)));
}

export async function backends(o: { json?: boolean; consoleCmd?: string; bootCmd?: string }): Promise<number> {
  const infos = (await probeAll([], DEFAULT_PROFILE, consoleOptions(o), true)).map((b) => b.info);
  if (o.json) process.stdout.write(`${JSON.stringify(infos, null, 2)}\n`);
  else {
    for (const b of infos) {
      process.stdout.write(`${b.name}: ${b.available ? 'available' : 'unavailable'}${b.version ? `, ${b.version}` : ''}${b.reason ? ` — ${b.reason}` : ''}\n`);
      const pkgs = Object.entries(b.packages ?? {}).map(([p, v]) => `${p}=${v}`);
      if (b.peer !== undefined || pkgs.length) process.stdout.write(`  ${b.peer !== undefined ? `pinned peer ${b.peer} (runner/peers/pins.yaml)` : "the host's packages"}${pkgs.length ? `: ${pkgs.join(' ')}` : ''}\n`);
      for (const [f, s] of Object.entries(b.features)) {
        process.stdout.write(`  ${f}: can show ${s.present ? 'yes' : 'no'}, can hide ${s.absent ? 'yes' : 'no'}${s.reason ? ` — ${s.reason}` : ''}\n`);
      }
    }
    // not probed here: kvm-tcg would boot a guest to answer
    process.stdout.write('run only when named in --backend: model-l0 (the model under the virtual L0), kvm-tcg (the native runner on KVM inside QEMU TCG; `svmconf tcghost --check` builds and boots it and says what KVM offers there)\n');
  }
  return EXIT.AGREE;
}
