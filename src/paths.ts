import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root (the folder holding package.json), found from this file whether it runs from
 * src/ (tests) or from dist/src/ (the built service).
 */
export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'drizzle'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the package root above ${start}`);
    dir = parent;
  }
}

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'drizzle');
