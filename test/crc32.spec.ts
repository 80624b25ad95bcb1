import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { crc32, crc32Hex } from '../runner/crc32.ts';

describe('runner/crc32', () => {
  it('gives the IEEE check value for "123456789"', () => {
    assert.equal(crc32('123456789'), 0xcbf43926);
    assert.equal(crc32Hex('123456789'), 'cbf43926');
  });

  it('matches other known vectors', () => {
    assert.equal(crc32(''), 0);
    assert.equal(crc32Hex('a'), 'e8b7be43');
    assert.equal(crc32Hex('The quick brown fox jumps over the lazy dog'), '414fa339');
    // Leading zeros are kept: the protocol always prints 8 digits.
    assert.match(crc32Hex('SVMCONF END'), /^[0-9a-f]{8}$/);
  });

  it('hashes strings and buffers alike and can be continued', () => {
    const text = 'SVMCONF CASE a/b=1 OK 00ff';
    assert.equal(crc32(Buffer.from(text)), crc32(text));
    const whole = crc32(text);
    const split = crc32(text.slice(10), crc32(text.slice(0, 10)));
    assert.equal(split, whole);
  });

  it('agrees with zlib on random data', function () {
    const z = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
    if (typeof z !== 'function') this.skip();
    for (let n = 0; n < 50; n++) {
      const buf = randomBytes(n * 37);
      assert.equal(crc32(buf), z!(buf));
    }
  });
});
