/**
 * Metadata as stored (JSON text or null), serializing each object once: the records of one message
 * share one metadata object (validateRecords), so a run of them costs one JSON.stringify.
 */
export class MetadataJson {
  #last: Record<string, unknown> | null = null;
  #json: string | null = null;

  of(metadata: Record<string, unknown> | null): string | null {
    if (metadata === null) return null;
    if (metadata !== this.#last) {
      this.#last = metadata;
      this.#json = JSON.stringify(metadata);
    }
    return this.#json;
  }
}
