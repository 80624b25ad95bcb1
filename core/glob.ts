// Globs on case ids, shared by the generator's --filter (generator/matrix.ts filterCases) and the
// deviation registry's `cases:` lists (report/deviations.ts): one syntax for both.

/** Glob on case ids: `*` matches within and across segments, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}
