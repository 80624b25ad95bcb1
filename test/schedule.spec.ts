import assert from 'node:assert/strict';
import type { Backend, BootRequest, BootResult } from '../runner/backend.ts';
import type { BackendInfo, Case, CaseResult, CpuConfig, Kernel, Requirement, Template, TortureCounts } from '../core/types.ts';
import { formatBegin, formatCase, formatEnd, formatPanic } from '../runner/protocol.ts';
import { probeSafely, runKernels, type ProgressEvent, type ScheduledBackend } from '../runner/schedule.ts';

/**
 * What a fake kernel does in each case:
 *   ok      prints an OK record          skip   prints SKIP(reason)
 *   kcrash  prints a CRASH record        vmcrash the VM dies (triple fault)
 *   hang    no output, boot times out    panic  prints PANIC and exits
 *   vmmerr  the VMM fails mid-case       throw  the backend throws
 *   exit    the VM exits without a line
 */
type Act = 'ok' | 'skip' | 'kcrash' | 'vmcrash' | 'hang' | 'panic' | 'throw' | 'exit';

const TEMPLATE = { id: 't.fake' } as Template;

function mkKernel(id: string, acts: Act[], opts: { requires?: Requirement[][]; cpu?: CpuConfig } = {}): Kernel & { acts: Act[] } {
  const cases: Case[] = acts.map((a, i) => ({
    id: `${id}/n=${i},a=${a}`,
    template: TEMPLATE,
    params: { n: String(i), a },
    requires: opts.requires?.[i] ?? [],
  }));
  return { id: `${id}#0`, cases, cpu: opts.cpu ?? {}, elf: `/nonexistent/${id}.elf`, bin: '', map: '', acts };
}

const recordOf = (i: number): string => i.toString(16).padStart(2, '0') + '00';

function info(name: string, over: Partial<BackendInfo> = {}): BackendInfo {
  const ok = { present: true, absent: true, reason: '' };
  return { name, kind: 'emulator', available: true, reason: '', features: { svm: ok, npt: ok, nrips: ok }, ...over };
}

interface Boot {
  kernel: string;
  start: number;
  end?: number;
}

/** An in-memory backend that plays the fake kernels' scripts, honouring start= and end=. */
class FakeBackend implements Backend {
  readonly kind = 'emulator';
  boots: Boot[] = [];
  ran: string[] = [];
  constructor(
    readonly name: string,
    /** Whether `throw` throws (else it behaves as `ok`). */
    private readonly throws = true,
    /** Boots in flight, shared between backends to check the global job limit. */
    private readonly load = { now: 0, max: 0 },
  ) {}
  async probe(): Promise<BackendInfo> {
    return info(this.name);
  }
  async boot(req: BootRequest): Promise<BootResult> {
    this.load.now++;
    this.load.max = Math.max(this.load.max, this.load.now);
    try {
      await new Promise((r) => setImmediate(r)); // let other jobs interleave
      const k = req.kernel as Kernel & { acts: Act[] };
      this.boots.push({ kernel: k.id, start: req.start, ...(req.end !== undefined ? { end: req.end } : {}) });
      const lines: string[] = [formatBegin(k.id, k.cases.length, req.start)];
      const out = (end: BootResult['end'], detail: string): BootResult => {
        for (const l of lines) req.onLine?.(l);
        return { end, lines, detail, seconds: 0.5 };
      };
      for (let i = req.start; i < (req.end ?? k.cases.length); i++) {
        const id = k.cases[i]!.id;
        this.ran.push(id);
        switch (k.acts[i]!) {
          case 'ok':
            lines.push(formatCase(id, 'OK', recordOf(i)));
            break;
          case 'skip':
            lines.push(formatCase(id, 'SKIP(no svm)'));
            break;
          case 'kcrash':
            lines.push(formatCase(id, 'CRASH', '0d'.padEnd(96, '0')));
            break;
          case 'vmcrash':
            return out('crashed', 'triple fault (reset)');
          case 'hang':
            return out('timeout', `no serial output for ${req.idleTimeoutMs / 1000} s`);
          case 'panic':
            lines.push(formatPanic('fault in handler'));
            return out('exited', 'debug-exit value 1 (exit status 3)');
          case 'exit':
            return out('exited', 'debug-exit value 0 (exit status 1)');
          case 'throw':
            if (this.throws) throw new Error('VMM socket closed');
            lines.push(formatCase(id, 'OK', recordOf(i)));
            break;
        }
      }
      lines.push(formatEnd());
      return out('exited', 'debug-exit value 0 (exit status 1)');
    } finally {
      this.load.now--;
    }
  }
}

/** Every case has exactly one result per backend, and the progress events say the same. */
function checkComplete(kernels: Kernel[], backends: string[], res: Map<string, Record<string, CaseResult>>, events: ProgressEvent[]): void {
  const caseEvents = events.filter((e) => e.type === 'case');
  const ids = kernels.flatMap((k) => k.cases.map((c) => c.id));
  assert.equal(res.size, ids.length);
  for (const id of ids) {
    assert.deepEqual(Object.keys(res.get(id)!).sort(), [...backends].sort(), id);
    for (const b of backends) {
      assert.equal(caseEvents.filter((e) => e.caseId === id && e.backend === b).length, 1, `${id} on ${b}`);
    }
  }
  const total = ids.length * backends.length;
  assert.equal(caseEvents.length, total);
  const last = caseEvents[caseEvents.length - 1]!;
  assert.equal(last.type === 'case' && last.done, total);
  assert.equal(last.type === 'case' && last.total, total);
}

async function run(kernels: Kernel[], backends: ScheduledBackend[], jobs = 2) {
  const events: ProgressEvent[] = [];
  const res = await runKernels(kernels, backends, { jobs, idleTimeoutMs: 1500, onProgress: (e) => events.push(e) });
  checkComplete(kernels, backends.map((b) => b.info.name), res, events);
  return { res, events };
}

const st = (res: Map<string, Record<string, CaseResult>>, k: Kernel, i: number, b = 'fake'): CaseResult =>
  res.get(k.cases[i]!.id)![b]!;

describe('runner/schedule', () => {
  it('runs a good batch in one boot and gives each case its record and seconds', async () => {
    const fb = new FakeBackend('fake');
    const k = mkKernel('t.good', ['ok', 'skip', 'kcrash', 'ok']);
    const { res } = await run([k], [{ backend: fb, info: info('fake') }]);
    assert.deepEqual(fb.boots, [{ kernel: k.id, start: 0 }]);
    assert.deepEqual(st(res, k, 0), { status: 'OK', record: '0000', seconds: 0.125 });
    assert.deepEqual(st(res, k, 1), { status: 'SKIP', reason: 'no svm', seconds: 0.125 });
    assert.equal(st(res, k, 2).status, 'CRASH');
    assert.equal(st(res, k, 3).record, '0300');
  });

  it('charges a VM crash to the running case and resumes after it', async () => {
    const fb = new FakeBackend('fake');
    const k = mkKernel('t.crash', ['ok', 'vmcrash', 'ok', 'vmcrash', 'ok']);
    const { res } = await run([k], [{ backend: fb, info: info('fake') }]);
    assert.deepEqual(fb.boots.map((b) => b.start), [0, 2, 4]);
    assert.deepEqual(
      k.cases.map((_, i) => st(res, k, i).status),
      ['OK', 'CRASH', 'OK', 'CRASH', 'OK'],
    );
    assert.equal(st(res, k, 1).reason, 'triple fault (reset)');
    // The crashed case shares its boot's time with the case that boot finished.
    assert.equal(st(res, k, 1).seconds, 0.25);
  });

  it('a timeout becomes TIMEOUT with the seconds, then the kernel boots again', async () => {
    const fb = new FakeBackend('fake');
    const k = mkKernel('t.hang', ['ok', 'hang', 'ok']);
    const { res } = await run([k], [{ backend: fb, info: info('fake') }]);
    assert.deepEqual(fb.boots.map((b) => b.start), [0, 2]);
    assert.equal(st(res, k, 1).status, 'TIMEOUT');
    assert.match(st(res, k, 1).reason!, /1\.5 s/);
    assert.equal(st(res, k, 2).status, 'OK');
  });

  it('PANIC makes the running case CRASH with the text; a silent exit is an ERROR', async () => {
    const fb = new FakeBackend('fake');
    const k = mkKernel('t.panic', ['panic', 'exit', 'ok']);
    const { res } = await run([k], [{ backend: fb, info: info('fake') }]);
    assert.deepEqual(fb.boots.map((b) => b.start), [0, 1, 2]);
    assert.equal(st(res, k, 0).status, 'CRASH');
    assert.match(st(res, k, 0).reason!, /PANIC: fault_in_handler/);
    assert.equal(st(res, k, 1).status, 'ERROR');
    assert.equal(st(res, k, 2).status, 'OK');
  });

  it('a backend that throws gets ERRORs with its message; other backends go on', async () => {
    const bad = new FakeBackend('bad');
    const good = new FakeBackend('good', false);
    const k = mkKernel('t.throw', ['ok', 'throw', 'ok']);
    const k2 = mkKernel('t.fine', ['ok']);
    const { res } = await run([k, k2], [
      { backend: bad, info: info('bad') },
      { backend: good, info: info('good') },
    ]);
    // The boot threw, so none of its lines exist: every case of that kernel is an ERROR.
    for (const i of [0, 1, 2]) {
      assert.equal(st(res, k, i, 'bad').status, 'ERROR');
      assert.match(st(res, k, i, 'bad').reason!, /bad failed: VMM socket closed/);
      assert.equal(st(res, k, i, 'good').status, 'OK');
    }
    // The same backend still runs its other kernels.
    assert.equal(st(res, k2, 0, 'bad').status, 'OK');
    assert.equal(bad.boots.length, 2);
  });

  it('UNSUPPORTED cases take the feature reason and are never run (end= stops before them)', async () => {
    const fb = new FakeBackend('fake');
    const nrips: Requirement[] = [{ feature: 'nrips', present: true }];
    const k = mkKernel('t.req', ['ok', 'vmcrash', 'ok', 'ok'], { requires: [[], nrips, [], []] });
    const reason = 'QEMU 7.2 TCG does not implement NRIPS (nrip-save is dropped)';
    const bi = info('fake', {
      features: {
        svm: { present: true, absent: true, reason: '' },
        npt: { present: true, absent: true, reason: '' },
        nrips: { present: false, absent: true, reason },
      },
    });
    const { res } = await run([k], [{ backend: fb, info: bi }]);
    assert.deepEqual(fb.boots, [
      { kernel: k.id, start: 0, end: 1 },
      { kernel: k.id, start: 2 },
    ]);
    assert.ok(!fb.ran.includes(k.cases[1]!.id));
    assert.deepEqual(st(res, k, 1), { status: 'UNSUPPORTED', reason: `needs nrips present: ${reason}` });
    assert.equal(st(res, k, 3).status, 'OK');
  });

  it('a kernel cpu config the backend cannot give makes every case UNSUPPORTED', async () => {
    const fb = new FakeBackend('fake');
    const k = mkKernel('t.cpu', ['ok', 'ok'], { cpu: { svm: true } });
    const bi = info('fake', {
      features: {
        svm: { present: false, absent: true, reason: 'no kvm_amd' },
        npt: { present: false, absent: true, reason: 'no kvm_amd' },
        nrips: { present: false, absent: true, reason: 'no kvm_amd' },
      },
    });
    const { res } = await run([k], [{ backend: fb, info: bi }]);
    assert.equal(fb.boots.length, 0);
    assert.equal(st(res, k, 0).status, 'UNSUPPORTED');
    assert.match(st(res, k, 1).reason!, /needs svm present: no kvm_amd/);
  });

  it('an unavailable backend gives UNSUPPORTED with its reason and boots nothing', async () => {
    const fb = new FakeBackend('fake');
    const k = mkKernel('t.na', ['ok', 'ok']);
    const { res } = await run([k], [{ backend: fb, info: info('fake', { available: false, reason: 'qemu missing' }) }]);
    assert.equal(fb.boots.length, 0);
    for (const i of [0, 1]) assert.deepEqual(st(res, k, i), { status: 'UNSUPPORTED', reason: 'qemu missing' });
  });

  it('a kernel that never starts gets ERRORs from one boot, not one boot per case', async () => {
    const silent: Backend = {
      name: 'silent',
      kind: 'emulator',
      probe: async () => info('silent'),
      boot: async () => ({ end: 'crashed', lines: ['qemu: could not load kernel'], detail: 'failed to launch', seconds: 0.1 }),
    };
    let boots = 0;
    const counting: Backend = { ...silent, boot: async (r) => (boots++, silent.boot(r)) };
    const k = mkKernel('t.dead', ['ok', 'ok', 'ok']);
    const { res } = await run([k], [{ backend: counting, info: info('silent') }]);
    assert.equal(boots, 1);
    for (const i of [0, 1, 2]) {
      assert.equal(st(res, k, i, 'silent').status, 'ERROR');
      assert.match(st(res, k, i, 'silent').reason!, /did not start.*failed to launch/);
    }
  });

  it('caps the boots of a kernel so a backend that makes no progress cannot loop', async () => {
    // Prints a valid BEGIN and then always crashes, whatever start it is given.
    let boots = 0;
    const crashy: Backend = {
      name: 'crashy',
      kind: 'emulator',
      probe: async () => info('crashy'),
      boot: async (r) => {
        boots++;
        return { end: 'crashed', lines: [formatBegin(r.kernel.id, r.kernel.cases.length, r.start)], detail: 'boom', seconds: 1 };
      },
    };
    const k = mkKernel('t.loop', ['ok', 'ok', 'ok']);
    const events: ProgressEvent[] = [];
    const res = await runKernels([k], [{ backend: crashy, info: info('crashy') }], {
      jobs: 1,
      idleTimeoutMs: 1000,
      maxBoots: () => 2,
      onProgress: (e) => events.push(e),
    });
    checkComplete([k], ['crashy'], res, events);
    assert.equal(boots, 2);
    assert.equal(st(res, k, 0, 'crashy').status, 'CRASH');
    assert.equal(st(res, k, 1, 'crashy').status, 'CRASH');
    assert.match(st(res, k, 2, 'crashy').reason!, /gave up after 2 boots/);
  });

  it('stops when aborted: no new boots, and the run rejects', async () => {
    const ac = new AbortController();
    let boots = 0;
    const aborting: Backend = {
      name: 'ab',
      kind: 'emulator',
      probe: async () => info('ab'),
      boot: async (r) => {
        boots++;
        ac.abort(); // the user pressed ^C during the first boot
        r.signal?.throwIfAborted();
        throw new Error('unreachable');
      },
    };
    const kernels = [1, 2, 3].map((n) => mkKernel(`t.ab${n}`, ['ok']));
    await assert.rejects(
      runKernels(kernels, [{ backend: aborting, info: info('ab') }], { jobs: 1, idleTimeoutMs: 1000, signal: ac.signal }),
      { name: 'AbortError' },
    );
    assert.equal(boots, 1);
  });

  it('runs kernel × backend pairs in parallel up to jobs, never more', async () => {
    const load = { now: 0, max: 0 };
    const a = new FakeBackend('a', true, load);
    const b = new FakeBackend('b', true, load);
    const kernels = [1, 2, 3, 4, 5].map((n) => mkKernel(`t.par${n}`, ['ok', 'vmcrash', 'ok']));
    const { res, events } = await run(kernels, [
      { backend: a, info: info('a') },
      { backend: b, info: info('b') },
    ], 3);
    assert.ok(load.max <= 3, `at most 3 boots at once, saw ${load.max}`);
    assert.ok(load.max >= 2, `boots overlapped (saw ${load.max})`);
    // Every kernel was booted twice on each backend (start 0, then after the crash).
    assert.equal(events.filter((e) => e.type === 'boot').length, 5 * 2 * 2);
    for (const k of kernels) {
      assert.deepEqual(k.cases.map((_, i) => st(res, k, i, 'b').status), ['OK', 'CRASH', 'OK']);
    }
  });
  it('a probe that throws makes only that backend unavailable, with the error as the reason', async () => {
    const broken: Backend = {
      name: 'broken',
      kind: 'emulator',
      probe: async () => {
        throw new Error('helper printed garbage');
      },
      boot: async () => {
        throw new Error('never booted');
      },
    };
    const good = new FakeBackend('good', false);
    const [bi, gi] = await Promise.all([probeSafely(broken), probeSafely(good)]);
    assert.equal(bi.available, false);
    assert.equal(bi.reason, 'probe failed: helper printed garbage');
    assert.equal(bi.features.svm.present, false);
    assert.equal(gi.available, true);
    const k = mkKernel('t.probe', ['ok', 'ok']);
    const { res } = await run([k], [
      { backend: broken, info: bi },
      { backend: good, info: gi },
    ]);
    assert.deepEqual([0, 1].map((i) => st(res, k, i, 'broken').status), ['UNSUPPORTED', 'UNSUPPORTED']);
    assert.deepEqual([0, 1].map((i) => st(res, k, i, 'good').status), ['OK', 'OK']);
  });

  it("a boot's note and torture counts (the kvm backend's) go to every case that boot settled, and to its boot event", async () => {
    const fb = new FakeBackend('fake');
    let n = 0;
    const counts = (restores: number): TortureCounts => ({ restores, atExits: restores, atTimer: 0, every: 1, control: false, inL2: false, msrsLeftOut: [] });
    const noted: Backend = {
      name: 'fake',
      kind: 'emulator',
      probe: () => fb.probe(),
      boot: async (req) => ({ ...(await fb.boot(req)), note: `torture: ${++n} restores`, torture: counts(n) }),
    };
    const k = mkKernel('t.note', ['ok', 'vmcrash', 'ok']);
    const { res, events } = await run([k], [{ backend: noted, info: info('fake') }]);
    const boots = events.flatMap((ev) => (ev.type === 'boot' && ev.torture ? [ev.torture.restores] : []));
    assert.deepEqual([0, 1, 2].map((i) => st(res, k, i).note), ['torture: 1 restores', 'torture: 1 restores', 'torture: 2 restores']);
    assert.deepEqual([0, 1, 2].map((i) => st(res, k, i).torture?.restores), [1, 1, 2]);
    assert.deepEqual(boots, [1, 2], 'one count per boot, for the run summary');
  });
});
