// CRC-32 as docs/protocol.md specifies it: the IEEE 802.3 CRC of zlib and gzip (reflected,
// polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF). Kernels compute it byte by byte
// as they send each line, so the runner must compute exactly the same function.

/** Reflected form of the IEEE 802.3 polynomial 0x04C11DB7. */
const POLY = 0xedb88320;

/** One entry per byte value: the CRC register after shifting that byte through eight rounds. */
const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * Continue a CRC over more bytes. `crc` is a previous result (0 to start), so
 * `crc32(b, crc32(a)) === crc32(concat(a, b))`, as zlib's crc32(crc, buf, len).
 */
export function crc32(data: Uint8Array | string, crc = 0): number {
  // Strings are hashed as their UTF-8 bytes; protocol lines are ASCII, where that is the identity.
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** The CRC as the protocol prints it: 8 lower-case hex digits. */
export function crc32Hex(data: Uint8Array | string): string {
  return crc32(data).toString(16).padStart(8, '0');
}
