// Errors a user can act on: each names the file and line it is about.

export class TemplateError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly detail: string,
    readonly context?: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${detail}${context ? `\n${context}` : ''}`);
    this.name = 'TemplateError';
  }
}

/** A required external tool is missing: say how to get it. */
export class ToolMissingError extends Error {
  constructor(readonly tool: string, readonly install: string) {
    super(`${tool} not found: ${install}`);
    this.name = 'ToolMissingError';
  }
}

/** A build step (ld, objcopy) failed on something no template line explains: what and the tool's words. */
export class BuildError extends Error {
  override name = 'BuildError';
}
