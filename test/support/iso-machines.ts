// Machines for the console backend's end-to-end test and scripts/iso-compare.ts: QEMU booting
// the suite image from a CD-ROM, with SeaBIOS (BIOS) or OVMF (UEFI), its COM1 on stdio so that
// the command's output is the machine's serial console, as `ipmitool … sol activate` would be.

import { access, copyFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Quote for /bin/sh. */
export function sh(word: string): string {
  return /^[A-Za-z0-9_./=,:+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const QEMU_COMMON = ['-cpu', 'qemu64,+svm,+npt', '-m', '128', '-nodefaults', '-display', 'none', '-serial', 'stdio', '-device', 'isa-debug-exit,iobase=0xf4,iosize=4'];

export interface MachineOptions {
  /** Stop QEMU on a reset (a triple fault) instead of booting again. */
  noReboot?: boolean;
}

export function qemuBiosCmd(iso: string, o: MachineOptions = {}): string {
  return ['qemu-system-x86_64', ...QEMU_COMMON, ...(o.noReboot === false ? [] : ['-no-reboot']), '-cdrom', iso].map(sh).join(' ');
}

/** OVMF as Debian's ovmf package installs it (the 4M build first). */
export const OVMF_PAIRS = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
] as const;

export async function findOvmf(): Promise<{ code: string; vars: string } | undefined> {
  for (const [code, vars] of OVMF_PAIRS) {
    try {
      await access(code);
      await access(vars);
      return { code, vars };
    } catch {
      // next
    }
  }
  return undefined;
}

/** UEFI: OVMF's code read-only and a private copy of its variable store in `dir`. */
export async function qemuUefiCmd(iso: string, dir: string, o: MachineOptions = {}): Promise<string> {
  const ovmf = await findOvmf();
  if (!ovmf) throw new Error('OVMF not found under /usr/share/OVMF: apt-get install ovmf (or run make setup)');
  const vars = join(dir, 'OVMF_VARS.fd');
  await copyFile(ovmf.vars, vars);
  return [
    'qemu-system-x86_64', ...QEMU_COMMON, ...(o.noReboot === false ? [] : ['-no-reboot']),
    '-drive', `if=pflash,format=raw,readonly=on,file=${ovmf.code}`,
    '-drive', `if=pflash,format=raw,file=${vars}`,
    '-cdrom', iso,
  ].map(sh).join(' ');
}
