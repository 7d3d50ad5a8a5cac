/**
 * Reads a V8 heap snapshot (`v8.writeHeapSnapshot`) into totals per kind of object, so two snapshots
 * can be subtracted: what N more connections (subscriptions, queued messages) added, by object type.
 *
 * Kinds: a JS object is its constructor name (`Channel`, `Session`, `Socket`); a closure is
 * `closure NAME`; everything else (arrays, hash tables, strings, code, native objects) is its type and
 * name plus its first retainer and the edge it is held by, e.g. `array (object elements) ← RingQueue.#slots`,
 * so an internal array is charged to the field that owns it. Sizes are self (shallow) sizes, so
 * the kinds add up to the heap without double counting.
 *
 * The file is parsed from bytes, not with JSON.parse: a snapshot of a broker with 20,000 connections
 * can pass V8's maximum string length.
 */
import { readFileSync } from 'node:fs';

export interface KindTotal {
  count: number;
  bytes: number;
}

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

function indexAfter(buf: Buffer, marker: string, from = 0): number {
  const at = buf.indexOf(marker, from, 'latin1');
  if (at < 0) throw new Error(`heap snapshot: ${marker} not found`);
  return at + marker.length;
}

/** Reads non-negative integers separated by commas (and whitespace) up to `]`. */
function readIntegers(buf: Buffer, start: number, count: number): Float64Array {
  const out = new Float64Array(count);
  let n = 0;
  let value = 0;
  let inNumber = false;
  for (let i = start; i < buf.length; i++) {
    const c = buf[i]!;
    if (c >= 0x30 && c <= 0x39) {
      value = value * 10 + (c - 0x30);
      inNumber = true;
    } else {
      if (inNumber) {
        out[n++] = value;
        value = 0;
        inNumber = false;
      }
      if (c === 0x5d) break; // ]
    }
  }
  if (n !== count) throw new Error(`heap snapshot: expected ${count} integers, read ${n}`);
  return out;
}

/** Totals per kind of object (see the file comment). */
export function summarizeSnapshot(file: string): Map<string, KindTotal> {
  const buf = readFileSync(file);
  const nodesAt = indexAfter(buf, '"nodes":[');
  const header = buf.toString('utf8', 0, nodesAt - '"nodes":['.length).trim().replace(/,$/, '');
  const snapshot = (JSON.parse(`${header}}`) as { snapshot: { meta: Meta; node_count: number; edge_count: number } }).snapshot;
  const { meta } = snapshot;
  const nodeFieldCount = meta.node_fields.length;
  const edgeFieldCount = meta.edge_fields.length;
  const nodes = readIntegers(buf, nodesAt, snapshot.node_count * nodeFieldCount);
  const edges = readIntegers(buf, indexAfter(buf, '"edges":[', nodesAt), snapshot.edge_count * edgeFieldCount);
  const stringsAt = buf.lastIndexOf('"strings":[', undefined, 'latin1');
  const stringsText = buf.toString('utf8', stringsAt + '"strings":'.length).trim().replace(/}\s*$/, '');
  const strings = JSON.parse(stringsText) as string[];

  const typeOf = meta.node_fields.indexOf('type');
  const nameOf = meta.node_fields.indexOf('name');
  const sizeOf = meta.node_fields.indexOf('self_size');
  const edgeCountOf = meta.node_fields.indexOf('edge_count');
  const edgeTypeOf = meta.edge_fields.indexOf('type');
  const edgeNameOf = meta.edge_fields.indexOf('name_or_index');
  const edgeToOf = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const nodeCount = snapshot.node_count;

  // First strong retainer of every node, and the name of the edge it holds it by.
  const owner = new Int32Array(nodeCount).fill(-1);
  const ownerEdge: Array<string | undefined> = new Array<string | undefined>(nodeCount);
  let edge = 0;
  for (let node = 0; node < nodeCount; node++) {
    const edgeCount = nodes[node * nodeFieldCount + edgeCountOf]!;
    for (let e = 0; e < edgeCount; e++, edge += edgeFieldCount) {
      const type = edgeTypes[edges[edge + edgeTypeOf]!];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = edges[edge + edgeToOf]! / nodeFieldCount;
      if (owner[to] !== -1) continue;
      owner[to] = node;
      const name = edges[edge + edgeNameOf]!;
      // Indices (array elements, hash table slots) would make every element a kind of its own.
      const edgeName = type === 'element' || type === 'hidden' ? '[]' : strings[name];
      ownerEdge[to] = edgeName !== undefined && /^\d+$/.test(edgeName) ? '[]' : edgeName;
    }
  }

  const label = (node: number): string => {
    const type = nodeTypes[nodes[node * nodeFieldCount + typeOf]!]!;
    const name = strings[nodes[node * nodeFieldCount + nameOf]!] ?? '?';
    if (type === 'object') return name;
    if (type === 'closure') return `closure ${name || '(anonymous)'}`;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return type;
    return `${type} ${name}`;
  };
  // Where a node is held: climbs past generic holders (arrays, plain objects, Map/Set tables) to the
  // first named one, at most MAX_CHAIN steps: `Array.elements ← RingQueue.#slots`.
  const holder = (node: number): string => {
    const steps: string[] = [];
    let at = node;
    for (let i = 0; i < MAX_CHAIN; i++) {
      const by = owner[at]!;
      if (by < 0) {
        steps.push('(root)');
        break;
      }
      const byLabel = label(by);
      if (byLabel.startsWith('synthetic')) {
        steps.push(byLabel);
        break;
      }
      steps.push(`${shortLabel(byLabel)}.${ownerEdge[at] ?? '?'}`);
      if (!GENERIC.test(byLabel)) break;
      at = by;
    }
    return steps.join(' ← ');
  };

  const totals = new Map<string, KindTotal>();
  for (let node = 0; node < nodeCount; node++) {
    const own = label(node);
    const kind = GENERIC.test(own) ? `${own} ← ${holder(node)}` : own;
    const total = totals.get(kind);
    const bytes = nodes[node * nodeFieldCount + sizeOf]!;
    if (total === undefined) totals.set(kind, { count: 1, bytes });
    else {
      total.count++;
      total.bytes += bytes;
    }
  }
  return totals;
}

const MAX_CHAIN = 3;
/** Kinds that say nothing by themselves, so they are charged to whatever holds them. */
const GENERIC = /^(Object|Array|Map|Set|Buffer|Uint8Array|ArrayBuffer|array |hidden |native |code |object shape|string|concatenated string|sliced string|number|closure )/;

function shortLabel(label: string): string {
  return label.length > 40 ? `${label.slice(0, 37)}...` : label;
}

/** `after - before`, per unit, largest first, as rows of [kind, count per unit, bytes per unit]. */
export function perUnit(after: Map<string, KindTotal>, before: Map<string, KindTotal>, units: number): Array<{ kind: string; count: number; bytes: number }> {
  const rows: Array<{ kind: string; count: number; bytes: number }> = [];
  for (const [kind, total] of after) {
    const base = before.get(kind) ?? { count: 0, bytes: 0 };
    rows.push({ kind, count: (total.count - base.count) / units, bytes: (total.bytes - base.bytes) / units });
  }
  for (const [kind, base] of before) if (!after.has(kind)) rows.push({ kind, count: -base.count / units, bytes: -base.bytes / units });
  return rows.sort((a, b) => b.bytes - a.bytes);
}
