#!/usr/bin/env -S node --max-semi-space-size=128
// Launcher for `npx bucketmq` and the installed `bucketmq` command: registers tsx so the TypeScript
// sources run as they are (no build step), then hands the arguments to the CLI (server by default).
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
const code = await runCli(process.argv.slice(2), process.env);
if (code !== 0) process.exitCode = code;
