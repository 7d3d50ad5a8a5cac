/**
 * One live inspector viewer (SPEC §6): a WebSocket that first gets a device's kept history, oldest
 * first, then its events as they happen, optionally only some kinds.
 *
 * Rule: a slow viewer never slows the broker. Events are sent while the socket holds at most
 * `maxBufferedBytes` unsent; beyond that they are only counted (one comparison and an increment per
 * event, nothing buffered), and once the socket has drained to half the bound the viewer gets one
 * `{"kind":"skipped","count":N}` marker and events flow again. Memory per viewer is thus capped at
 * about the bound plus one event.
 *
 * Cost: each event is stringified once for all its viewers (wire.ts); a viewer's frames of one tick
 * leave together (its TCP/TLS socket is corked until the next tick, or until FLUSH_BYTES are waiting),
 * not in one system call each.
 */
import type { WebSocket } from 'ws';
import type { InspectorBus, InspectorEvent } from './inspector-bus.ts';
import { kindOf, wireJson } from './wire.ts';

/** Corked bytes written at once; a burst in one tick is not mistaken for a slow viewer. */
const FLUSH_BYTES = 16 * 1024;

/** How long a viewer that does not read our close frame keeps its socket. */
const CLOSE_GRACE_MS = 5_000;

/** The byte stream under the WebSocket (the upgraded TCP or TLS socket). */
export interface CorkableStream {
  cork(): void;
  uncork(): void;
}

export interface ViewerOptions {
  /** Only these kinds; null = every kind. */
  kinds: ReadonlySet<string> | null;
  /** Unsent bytes above which events are skipped (counted) rather than sent. */
  maxBufferedBytes: number;
}

export class Viewer {
  readonly deviceId: string;
  readonly #socket: WebSocket;
  readonly #stream: CorkableStream;
  #corked = false;
  readonly #kinds: ReadonlySet<string> | null;
  readonly #maxBuffered: number;
  /** From the first skipped event until the socket has drained to half the bound. */
  #stalled = false;
  #skipped = 0;

  /**
   * Replays the history and subscribes in one synchronous turn: the bus publishes synchronously on
   * this thread, so no event can fall between the two (no gap) or be in both (no duplicate).
   * The subscription ends when the socket closes, however it closes.
   */
  constructor(bus: InspectorBus, deviceId: string, socket: WebSocket, stream: CorkableStream, options: ViewerOptions) {
    this.deviceId = deviceId;
    this.#socket = socket;
    this.#stream = stream;
    this.#kinds = options.kinds;
    this.#maxBuffered = options.maxBufferedBytes;
    for (const event of bus.history(deviceId)) this.deliver(event);
    socket.once('close', bus.subscribe(deviceId, this.deliver));
  }

  /** The bus listener. */
  readonly deliver = (event: InspectorEvent): void => {
    if (this.#kinds !== null && !this.#kinds.has(kindOf(event))) return;
    if (this.#stalled || this.#socket.bufferedAmount > this.#maxBuffered) {
      this.#stalled = true;
      this.#skipped++;
      return;
    }
    if (!this.#corked) {
      this.#corked = true;
      this.#stream.cork();
      process.nextTick(uncork, this);
    }
    this.#socket.send(wireJson(event), this.#written);
    if (this.#socket.bufferedAmount >= FLUSH_BYTES) this.uncork();
  };

  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#stream.uncork();
  }

  close(code: number, reason: string): void {
    closeSocket(this.#socket, code, reason);
  }

  /**
   * Every frame's write callback: frames leave in order, so while stalled one of these callbacks is
   * the first to see the socket drained, and the marker goes out right after the last frame sent
   * before the stall.
   */
  readonly #written = (error?: Error | null): void => {
    // Node passes null on success; a failed write means the socket is closing.
    if (!this.#stalled || error || this.#socket.bufferedAmount > this.#maxBuffered / 2) return;
    this.#stalled = false;
    const count = this.#skipped;
    this.#skipped = 0;
    this.#socket.send(JSON.stringify({ kind: 'skipped', count }), this.#written);
  };
}

/** Sends a close frame; a peer that never reads it is cut off after a grace period. */
export function closeSocket(socket: WebSocket, code: number, reason: string): void {
  socket.close(code, reason);
  if (socket.readyState === socket.CLOSED) return;
  const timer = setTimeout(terminate, CLOSE_GRACE_MS, socket).unref();
  socket.once('close', () => clearTimeout(timer));
}

function uncork(viewer: Viewer): void {
  viewer.uncork();
}

function terminate(socket: WebSocket): void {
  socket.terminate();
}
