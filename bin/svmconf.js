#!/usr/bin/env node
// svmconf launcher: the CLI is TypeScript, run through tsx's ESM loader (no build step).
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
