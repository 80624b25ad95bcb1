// Page-table entry bits (APM vol. 2 5.3–5.4, "Long-mode page translation"), for the runtime's
// identity map, the templates' own page tables, and later the model's walker.

export const PTE = {
  P: 1n << 0n,
  W: 1n << 1n,
  US: 1n << 2n,
  PWT: 1n << 3n,
  PCD: 1n << 4n,
  A: 1n << 5n,
  D: 1n << 6n,
  /** PS in a PDE/PDPE: this entry maps a large page. */
  PS: 1n << 7n,
  G: 1n << 8n,
  NX: 1n << 63n,
} as const;

/** `.set PTE_<BIT>, mask` lines for the kernels' assembly. */
export function asmPaging(): string {
  return Object.entries(PTE).map(([k, v]) => `.set PTE_${k}, 0x${v.toString(16)}`).join('\n') + '\n';
}
