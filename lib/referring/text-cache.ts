// A Referrer's text embeddings, kept: by text (its token ids), with the passes in progress shared
// by the calls waiting for them, and ensembled label embeddings by label and template set, so
// that a whole vocabulary stays (its texts outnumber the text cache). Least recently used first.
import { MAX_VOCABULARY } from './labels.js';

/** Distinct texts whose embeddings a Referrer keeps (least recently used evicted first). */
export const TEXT_EMBEDDING_CACHE_SIZE = 1024;
/**
 * Labels (under a set of templates) whose ensembled embeddings a Referrer keeps: a whole
 * vocabulary of MAX_VOCABULARY, ~2 KB each. Its texts (7 templates a label) outnumber the text
 * cache past ~146 labels, and a scan through an LRU larger than it never hits: every labelled call
 * ran the text tower for every text again.
 */
export const LABEL_EMBEDDING_CACHE_SIZE = MAX_VOCABULARY;

export class TextEmbeddings {
  readonly #texts = new Map<string, Float32Array>();
  readonly #passes = new Map<string, Promise<Float32Array>>();
  readonly #labels = new Map<string, Float32Array>();

  /** @param pass the model's text embedding of token ids (queued behind the model's other work). */
  constructor(private readonly pass: (ids: Int32Array) => Promise<Float32Array>) {}

  /**
   * The embedding of a text's token ids (the cache's own array: not to be modified). Concurrent
   * calls for a text not yet kept share its one pass (200 calls for a new text ran ~156 passes).
   */
  text(ids: Int32Array): Promise<Float32Array> {
    const key = ids.join(',');
    const hit = recent(this.#texts, key);
    if (hit !== undefined) return Promise.resolve(hit);
    let pass = this.#passes.get(key);
    if (pass === undefined) {
      pass = this.pass(ids);
      this.#passes.set(key, pass);
      const kept = pass.then(
        (embedding) => remember(this.#texts, key, embedding, TEXT_EMBEDDING_CACHE_SIZE),
        () => {},
      );
      void kept.finally(() => this.#passes.delete(key));
    }
    return pass;
  }

  /** A label's ensembled embedding under `templates` (the cache's own), made by `make` when not kept. */
  async label(templates: readonly string[], label: string, make: () => Promise<Float32Array>): Promise<Float32Array> {
    const key = `${JSON.stringify(templates)}\n${label}`;
    const hit = recent(this.#labels, key);
    if (hit !== undefined) return hit;
    const embedding = await make();
    remember(this.#labels, key, embedding, LABEL_EMBEDDING_CACHE_SIZE);
    return embedding;
  }
}

/** The value of `key` in an LRU map (least recently used first), made the most recently used. */
function recent<V>(map: Map<string, V>, key: string): V | undefined {
  const hit = map.get(key);
  if (hit !== undefined) {
    map.delete(key);
    map.set(key, hit);
  }
  return hit;
}

/** Adds `key` to an LRU map as the most recently used, evicting the least recently used past `max`. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as string);
}
