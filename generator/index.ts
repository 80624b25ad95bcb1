// The generator stage: template folders → validated templates → cases → kernels.

import { readdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Case, Kernel, Template } from '../core/types.ts';
import { loadTemplate } from './template.ts';
import { TemplateError } from './errors.ts';
import { DEFAULT_PROFILE, profileFeatures, type Profile } from '../model/profile.ts';
import { Renderer } from './render.ts';
import { buildKernel, defaultCacheDir, planKernels, type BuildContext, type KernelPlan } from './kernel.ts';

export { expandAll, filterCases } from './matrix.ts';
export { planKernels, type KernelPlan } from './kernel.ts';
export { BuildError, TemplateError, ToolMissingError } from './errors.ts';

/** The repository root (this file lives in <root>/generator). */
export const ROOT = resolve(import.meta.dirname, '..');
export const BUILTIN_TEMPLATES = join(ROOT, 'templates');
const PARTIALS = 'partials';

/** A path relative to the working directory when it is below it, else absolute. */
function shown(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : p;
}

async function findTemplates(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!(d === dir && e.name === PARTIALS)) await walk(p);
      } else if (e.name.endsWith('.S.hbs')) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** Templates of the built-in folder plus any extra folders (users' private templates). */
export async function loadTemplates(extraDirs: string[] = []): Promise<Template[]> {
  const dirs = [BUILTIN_TEMPLATES, ...extraDirs.map((d) => resolve(d))];
  const templates: Template[] = [];
  for (const dir of dirs) {
    try {
      await readdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new TemplateError(shown(dir), undefined, code === 'ENOTDIR' ? 'not a folder of templates' : code === 'ENOENT' ? 'no such template folder' : `cannot read the template folder (${code})`);
    }
    for (const file of await findTemplates(dir)) {
      const display = dir === BUILTIN_TEMPLATES ? relative(ROOT, file) : shown(file);
      templates.push(await loadTemplate(file, display));
    }
  }
  return templates;
}

/** A renderer with the runtime partials and those of the extra folders' `partials/`. */
export async function makeRenderer(extraDirs: string[] = []): Promise<Renderer> {
  const r = new Renderer();
  await r.addPartialDir(join(BUILTIN_TEMPLATES, PARTIALS), ROOT);
  for (const d of extraDirs) await r.addPartialDir(join(resolve(d), PARTIALS), process.cwd());
  return r;
}

/**
 * The model runs a case when the profile's CPUID has every feature the case needs present; a
 * feature it needs absent the model hides from CPUID (runner/backends/model.ts bootProfile).
 */
export function modelCanRun(c: Case, profile: Profile = DEFAULT_PROFILE): boolean {
  const offered = profileFeatures(profile);
  return c.requires.every((r) => !r.present || offered[r.feature]);
}

export interface BuildOptions {
  extraDirs?: string[];
  cacheDir?: string;
  onKernel?: (k: Kernel) => void;
  /**
   * Refuse cases that use an instruction the reference model does not execute (default on).
   * Only cases the model can run are held to it: those whose requirements its profile meets.
   */
  checkModel?: boolean;
}

/** Build the kernels for `cases`; every kernel builds or the first error is thrown. */
export async function buildKernels(cases: Case[], opts: BuildOptions = {}): Promise<Kernel[]> {
  const ctx: BuildContext = {
    renderer: await makeRenderer(opts.extraDirs),
    cacheDir: opts.cacheDir ?? defaultCacheDir(ROOT),
    checkModel: opts.checkModel === false ? undefined : modelCanRun,
  };
  const plans: KernelPlan[] = planKernels(cases);
  const kernels: Kernel[] = [];
  for (const plan of plans) {
    const k = await buildKernel(ctx, plan);
    opts.onKernel?.(k);
    kernels.push(k);
  }
  return kernels;
}
