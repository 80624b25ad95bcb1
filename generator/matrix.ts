// Expand a template's parameter matrix into cases: the cartesian product in declaration order,
// minus the exclusions. Case ids are stable: they depend only on the template id and the values.

import type { Case, Requirement, Template } from '../core/types.ts';
import { globToRegExp } from '../core/glob.ts';
import { TemplateError } from './errors.ts';

export function caseId(template: Template, params: Record<string, string>): string {
  const parts = template.matrix.map(({ name }) => `${name}=${params[name]}`);
  return parts.length ? `${template.id}/${parts.join(',')}` : template.id;
}

function excluded(template: Template, params: Record<string, string>): boolean {
  return template.exclude.some((ex) => Object.entries(ex).every(([k, values]) => values.includes(params[k]!)));
}

/** Requirements of one case: the template's, plus `nrips=off` → `!nrips` for feature parameters. */
export function caseRequirements(template: Template, params: Record<string, string>): Requirement[] {
  const reqs = [...template.requires];
  for (const feature of template.featureParams) {
    const present = params[feature] === 'on';
    if (!reqs.some((r) => r.feature === feature)) reqs.push({ feature, present });
  }
  return reqs;
}

export function expandTemplate(template: Template): Case[] {
  let combos: Array<Record<string, string>> = [{}];
  for (const { name, values } of template.matrix) {
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [name]: v })));
  }
  return combos
    .filter((params) => !excluded(template, params))
    .map((params) => ({ id: caseId(template, params), template, params, requires: caseRequirements(template, params) }));
}

/** All cases of all templates; duplicate template ids are an error (case ids would collide). */
export function expandAll(templates: Template[]): Case[] {
  const seen = new Map<string, string>();
  for (const t of templates) {
    const other = seen.get(t.id);
    if (other) throw new TemplateError(t.displayPath, t.idLine, `template id \`${t.id}\` is already used by ${other} (case ids would collide): give one of them another id`);
    seen.set(t.id, `${t.displayPath}${t.idLine !== undefined ? `:${t.idLine}` : ''}`);
  }
  return templates.flatMap(expandTemplate);
}

export function filterCases(cases: Case[], globs: string[]): Case[] {
  if (globs.length === 0) return cases;
  const res = globs.map(globToRegExp);
  return cases.filter((c) => res.some((r) => r.test(c.id)));
}
