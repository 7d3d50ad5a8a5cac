#!/usr/bin/env node
// Launcher for `npx bucketmq` and the installed `bucketmq` command: registers tsx so the TypeScript
// sources run as they are (no build step), then hands the arguments to the server's main().
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/server.ts');
await main(process.argv.slice(2), process.env);
