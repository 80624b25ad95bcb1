// Column names. A matrix column is a backend, or a backend at a pinned peer version
// (docs/peers.md "Columns by version"): `qemu-tcg` runs the host's QEMU, `qemu-tcg@11.1` the QEMU
// of runner/peers/pins.yaml's `qemu@11.1`. The part before the `@` is the column's family, the name
// the deviation registry files entries under, so one entry can be checked on every version of its
// backend and its `versions.match` says which of them show it.

/** The column of `family` at a pinned version (`qemu-tcg`, `11.1` → `qemu-tcg@11.1`). */
export function columnName(family: string, version: string): string {
  return `${family}@${version}`;
}

/** The family of a column name: the name up to its `@`, or the whole name. */
export function familyOf(name: string): string {
  const at = name.indexOf('@');
  return at < 0 ? name : name.slice(0, at);
}

/** A column's family as its BackendInfo states it (a probe that knows better), else from its name. */
export function columnFamily(info: { name: string; family?: string }): string {
  return info.family ?? familyOf(info.name);
}
