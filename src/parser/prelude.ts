/**
 * Builds the in-isolate prelude (prelude/entry.ts with the npm `buffer` and `dayjs` packages) into
 * one IIFE string with esbuild, once per process, on first use.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ENTRY = fileURLToPath(new URL('./prelude/entry.ts', import.meta.url));

let cached: Promise<string> | undefined;

export function preludeSource(): Promise<string> {
  cached ??= bundle().catch((error: unknown) => {
    // Let a later call try again rather than caching the failure.
    cached = undefined;
    throw error;
  });
  return cached;
}

async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    // Neutral, not node: `buffer` must resolve to the npm package, not Node's built-in module.
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no prelude');
  return file.text;
}
