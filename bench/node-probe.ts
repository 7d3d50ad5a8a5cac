/**
 * Loaded into a Node broker under test (`node --import tsx --import bench/node-probe.ts ...`), so the
 * footprint bench can see its heap without the broker exposing anything. On SIGUSR2 it collects
 * garbage (a full GC, so the figures are live memory) and writes `process.memoryUsage()` to
 * `probeFile(pid)`; the bench reads RSS itself, from /proc, before it sends the signal.
 */
import { renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

export interface ProbeReport {
  /** process.memoryUsage() after a full GC, bytes. */
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export function probeFile(pid: number): string {
  return path.join(os.tmpdir(), `bench-node-probe-${pid}.json`);
}

// Only when loaded with --import into a broker (not when the bench imports probeFile).
if (process.execArgv.some((arg) => arg.endsWith('node-probe.ts'))) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  process.on('SIGUSR2', () => {
    gc();
    const usage = process.memoryUsage();
    const report: ProbeReport = { rss: usage.rss, heapTotal: usage.heapTotal, heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers };
    const file = probeFile(process.pid);
    writeFileSync(`${file}.tmp`, JSON.stringify(report));
    renameSync(`${file}.tmp`, file);
  });
}
