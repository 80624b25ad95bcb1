// Fixtures of the publish specs: test/fixtures/publish/{zen4,k10}.results.json are the l1.faults
// and l1.icebp cases of `svmconf run --backend model,qemu-tcg --filter 'l1.*' --jobs 1` on the
// development machine, with the default profile (amd-19h, Zen 4) and with --profile amd-10h (K10).

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Results } from '../../core/types.ts';
import { parseResults } from '../../report/results.ts';

export const FIXTURES = join(resolve(import.meta.dirname, '..'), 'fixtures', 'publish');

export const loadFixture = (name: 'zen4' | 'k10'): Results => parseResults(readFileSync(join(FIXTURES, `${name}.results.json`), 'utf8'), name);

/** Flip bit 0 of one byte of one backend's record (a defined bit: a divergence). */
export function tweak(r: Results, caseId: string, backend: string, byteOffset = 0): Results {
  const copy = structuredClone(r);
  const res = copy.cases.find((c) => c.id === caseId)!.results[backend]!;
  const rec = res.record!;
  const b = (parseInt(rec.slice(2 * byteOffset, 2 * byteOffset + 2), 16) ^ 0x01).toString(16).padStart(2, '0');
  res.record = rec.slice(0, 2 * byteOffset) + b + rec.slice(2 * byteOffset + 2);
  return copy;
}
