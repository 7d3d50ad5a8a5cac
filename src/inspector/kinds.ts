/**
 * The inspector's event kinds (SPEC §6, issue 16): the one list producers (the bus) and readers
 * (the REST listing, the live stream, the console) share, so a filter can refuse a name nobody emits.
 */
export const INSPECTOR_KINDS = [
  'connect',
  'connack',
  'subscribe',
  'unsubscribe',
  'publish_in',
  'publish_out',
  'disconnect',
  'data_stored',
  'data_rejected',
  'http_request',
  'parser_log',
  'parser_error',
  'action_run',
  'limit',
] as const;

export type InspectorKind = (typeof INSPECTOR_KINDS)[number];

const KNOWN: ReadonlySet<string> = new Set(INSPECTOR_KINDS);

export function isInspectorKind(name: string): name is InspectorKind {
  return KNOWN.has(name);
}

/**
 * A comma-separated list of kinds (`connect,publish_in`): the set, or what is wrong with the list,
 * worded to follow the field's name (`kinds names an unknown kind ...`).
 */
export function parseKinds(list: string): ReadonlySet<InspectorKind> | { problem: string } {
  const names = list.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
  if (names.length === 0) return { problem: 'names no kind' };
  const unknown = names.filter((name) => !isInspectorKind(name));
  if (unknown.length > 0) {
    return { problem: `has unknown ${unknown.length === 1 ? 'kind' : 'kinds'} ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${INSPECTOR_KINDS.join(', ')})` };
  }
  return new Set(names as InspectorKind[]);
}
