#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * The `cloudpi` executable (`npm start` runs `cloudpi serve` through it). It turns on Node's
 * compile cache before anything else loads, so that starts after the first reuse the compiled
 * code of the service and its libraries (see npm run bench), then runs the command line.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache?.();

const { runCli } = await import('./cli.js');
process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
