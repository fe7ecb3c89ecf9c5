import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_DOCS } from '../../src/config.js';
import { PROJECT_ROOT } from '../../src/paths.js';

const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  engines: { node: string };
  devDependencies: Record<string, string>;
};

describe('README', () => {
  it('documents every environment variable the service reads', () => {
    for (const name of Object.keys(ENV_DOCS)) expect(readme, name).toContain(`| \`${name}\` |`);
  });

  it('keeps the two-command quick start true', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
    expect(pkg.scripts.start).toContain('serve');
    expect(pkg.scripts.prestart).toBe('npm run build');
    expect(pkg.scripts.test).toMatch(/^vitest run/);
    expect(pkg.engines.node).toBe('>=22.12');
    expect(pkg.devDependencies.node).toMatch(/^\^?24\./);
  });
});
