/**
 * Entry of the in-isolate prelude, bundled by esbuild into one IIFE (see ../prelude.ts). It sets
 * the globals parser scripts expect as ordinary writable, configurable properties, so a script
 * may declare its own `Buffer`, and leaves the driver where the host picks it up once.
 */
import { Buffer } from 'buffer';
import dayjs from 'dayjs';
import utc from 'dayjs/plugin/utc.js';
import timezone from 'dayjs/plugin/timezone.js';
import { createDriver } from './driver.ts';
import { DRIVER_GLOBAL } from './protocol.ts';

dayjs.extend(utc);
dayjs.extend(timezone);

const globals = globalThis as unknown as Record<string, unknown>;
// WebAssembly memory is reserved outside the V8 heap, beyond the isolate's memory limit; shared
// memory and Atomics only make sharper timers. No decoder needs them.
delete globals.WebAssembly;
delete globals.SharedArrayBuffer;
delete globals.Atomics;

globals.Buffer = Buffer;
globals.dayjs = dayjs;
globals[DRIVER_GLOBAL] = createDriver(Buffer, dayjs);
