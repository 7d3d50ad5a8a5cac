/**
 * Frozen metadata objects are shared by many messages (one per MQTT topic, publish-pipeline.ts), so
 * their JSON is kept with them; the garbage collector drops an entry with its object.
 */
const frozenJson = new WeakMap<object, string>();

/**
 * Metadata as stored (JSON text or null), serializing each object once: the records of one message
 * share one metadata object (validateRecords), so a run of them costs one JSON.stringify, and a frozen
 * object (the metadata of every message of one MQTT topic) costs one for as long as it lives.
 */
export class MetadataJson {
  #last: Record<string, unknown> | null = null;
  #json: string | null = null;

  of(metadata: Record<string, unknown> | null): string | null {
    if (metadata === null) return null;
    if (metadata !== this.#last) {
      this.#last = metadata;
      this.#json = Object.isFrozen(metadata) ? frozenOf(metadata) : JSON.stringify(metadata);
    }
    return this.#json;
  }
}

function frozenOf(metadata: Record<string, unknown>): string {
  let json = frozenJson.get(metadata);
  if (json === undefined) {
    json = JSON.stringify(metadata);
    frozenJson.set(metadata, json);
  }
  return json;
}
