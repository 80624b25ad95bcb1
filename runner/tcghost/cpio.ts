// The initramfs of the TCG host (runner/tcghost/image.ts): a cpio archive in the "newc" format the
// Linux kernel unpacks at boot (Documentation/driver-api/early-userspace/buffer-format.rst), written
// here so that building the image needs no cpio binary.
//
// Each member: a 110-byte ASCII header ("070701" and 13 eight-digit hex fields), the NUL-terminated
// name, padding to 4 bytes, the data, padding to 4 bytes. The archive ends with "TRAILER!!!".

export interface CpioEntry {
  /** Path inside the archive, without a leading slash (the kernel unpacks relative to /). */
  name: string;
  kind: 'dir' | 'file' | 'symlink';
  /** Permission bits (0o755 …). */
  mode: number;
  /** File contents; for a symlink, its target. Absent for a directory. */
  data?: Uint8Array | string;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const HEADER_MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

const hex8 = (n: number): string => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new RangeError(`cpio: ${n} does not fit a newc field`);
  return n.toString(16).toUpperCase().padStart(8, '0');
};
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function header(ino: number, mode: number, nlink: number, size: number, nameSize: number): string {
  // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  return HEADER_MAGIC + [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameSize, 0].map(hex8).join('');
}

function member(ino: number, name: string, mode: number, nlink: number, data: Uint8Array): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const head = Buffer.from(header(ino, mode, nlink, data.length, nameBytes.length), 'ascii');
  return [head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)), Buffer.from(data), Buffer.alloc(pad4(data.length))];
}

/** The archive of `entries`, in order (a directory must come before what it holds). mtimes are 0, so the same input gives the same bytes. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    if (e.name === '' || e.name.startsWith('/') || e.name.split('/').includes('..')) throw new Error(`cpio: bad member name "${e.name}"`);
    if (seen.has(e.name)) throw new Error(`cpio: "${e.name}" twice`);
    seen.add(e.name);
    const type = e.kind === 'dir' ? S_IFDIR : e.kind === 'symlink' ? S_IFLNK : S_IFREG;
    const data = e.kind === 'dir' ? new Uint8Array() : typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : (e.data ?? new Uint8Array());
    parts.push(...member(i + 1, e.name, type | (e.mode & 0o7777), e.kind === 'dir' ? 2 : 1, data));
  });
  parts.push(...member(0, TRAILER, 0, 1, new Uint8Array()));
  return Buffer.concat(parts);
}
