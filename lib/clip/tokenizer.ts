// CLIP's tokenizer: byte-level BPE with an end-of-word marker, as Hugging Face transformers'
// `CLIPTokenizer` (transformers 5; `CLIPTokenizerFast` in 4.x) runs it through the `tokenizers`
// library. Reads a checkpoint's vocab.json + merges.txt (or tokenizer.json) and, when present,
// special_tokens_map.json / tokenizer_config.json for the special tokens and the context length.
//
// Why TypeScript and not the C++ core: tokenising a prompt is microseconds of string work on text
// that already lives in JS, it needs full Unicode regex classes (\p{L}, \p{N}), NFC and case
// mapping, which V8/ICU provide and C++17 does not, and its output is a short Int32Array of ids
// that crosses into native as is (the CLIPSeg text tower, which does run natively, consumes ids and
// never sees text). Keeping it here also keeps ICU and a second JSON/regex stack out of the addon.
//
// The pipeline (ref: transformers/models/clip/tokenization_clip.py, CLIPTokenizer.__init__, 5.x):
//   1. special tokens are cut out of the raw text (exact match, leftmost-longest); those flagged
//      `normalized` are cut out of the normalised text instead (tokenizers' AddedVocabulary);
//   2. normalise: NFC, every run of whitespace -> one space, lower-case character by character;
//   3. pre-tokenise: keep the matches of CLIP's pattern (drop the rest), split each by GPT-2's
//      byte-level pattern, map its UTF-8 bytes to printable characters (bytes_to_unicode);
//   4. BPE each word, `</w>` appended to its last symbol, merges by rank;
//   5. <|startoftext|> ids <|endoftext|>; truncation keeps the first maxLength - 2 ids; padding
//      on the right with the pad token (attention mask 0).
// The pure-Python `CLIPTokenizer` of transformers 4.x without ftfy cleans text with BERT's
// BasicTokenizer instead and so differs on CJK, control/format characters, U+0085/U+000B/U+000C
// and Greek final sigma (models/clip/generate_tokenizer_fixtures.py --check-slow lists the cases);
// that path is not reproduced here. Original OpenAI CLIP additionally runs ftfy and html.unescape.
import path from 'node:path';
import { describeValue, invalidType } from '../errors.js';
import { readModelText } from '../model-text.js';
import * as validate from '../validate.js';

/** CLIP's text context length: `text_config.max_position_embeddings` of every CLIP checkpoint. */
export const CLIP_CONTEXT_LENGTH = 77;
/** Marker appended to the last symbol of every word (tokenizers' BPE `end_of_word_suffix`). */
export const END_OF_WORD = '</w>';
/** Distinct words whose BPE result is kept; the cache is emptied when it fills. */
export const BPE_CACHE_SIZE = 10_000;

/** Padding of `encode` / `encodeBatch`, as transformers' `padding` argument. */
export type ClipPadding = 'none' | 'longest' | 'max_length';
const PADDINGS: readonly ClipPadding[] = ['none', 'longest', 'max_length'];

export interface ClipEncodeOptions {
  /**
   * `'none'` (default, as CLIPTokenizer): each sequence is `[bos, ...ids, eos]`, as long as it is.
   * `'max_length'`: padded on the right with the pad token to `maxLength` (the fixed-length input
   * original CLIP was trained on). `'longest'`: padded to the longest sequence of the batch
   * (transformers' `padding=True`; the same as `'none'` for a single text). Padding positions
   * have attention mask 0. The CLIP text model reads its output at the first `<|endoftext|>`, so
   * padding changes no result, only the shapes.
   */
  padding?: ClipPadding;
  /**
   * Cut the content to `maxLength - 2` ids so that the sequence with its start/end tokens fits
   * `maxLength` (the last id is then always `<|endoftext|>`). Default `true` — unlike
   * CLIPTokenizer, whose default keeps over-long sequences that no CLIP text model can take.
   */
  truncation?: boolean;
  /** Length that truncation and `'max_length'` padding use, 2 to 10^6. Default: the tokenizer's `modelMaxLength` (77). */
  maxLength?: number;
}

/** One tokenised text. */
export interface ClipEncoding {
  /** Token ids, `<|startoftext|>` first and `<|endoftext|>` after the content, then any padding. */
  inputIds: Int32Array;
  /** 1 for tokens, 0 for padding; same length as `inputIds`. */
  attentionMask: Uint8Array;
}

/** A special token: found in text as a whole and mapped to its id, never split by BPE. */
export interface ClipSpecialToken {
  content: string;
  id: number;
  /** Matched in the normalised (NFC, lower-cased) text instead of the raw text. */
  normalized: boolean;
}

/** Everything a tokenizer is made of; `ClipTokenizer.load` reads it from a checkpoint directory. */
export interface ClipTokenizerData {
  /** Token → id (vocab.json). */
  vocab: ReadonlyMap<string, number>;
  /** Merge pairs in rank order (merges.txt without its `#version` line). */
  merges: readonly (readonly [string, string])[];
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  /** Flags per special token content; missing ones are raw-text matches. */
  normalizedSpecialTokens?: ReadonlySet<string>;
  /** Ids of special tokens declared outside the vocabulary (tokenizer.json `added_tokens`). */
  addedTokenIds?: ReadonlyMap<string, number>;
  modelMaxLength?: number;
}

const DEFAULT_BOS = '<|startoftext|>';
const DEFAULT_EOS = '<|endoftext|>';

// Whitespace as the Oniguruma engine of `tokenizers` reads `\s` (Unicode White_Space minus
// U+FEFF plus U+0085; JS `\s` differs on exactly those two), used by all three patterns below.
const WS = '\\t\\n\\v\\f\\r\\u0085\\u2028\\u2029\\p{Zs}';
const WHITESPACE_RUN = new RegExp(`[${WS}]+`, 'gu');
// ref: tokenization_clip.py pre_tokenizers.Split(Regex(...), behavior="removed", invert=True)
const CLIP_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WS}\\p{L}\\p{N}]+`,
  'gu',
);
// ref: tokenizers/src/pre_tokenizers/byte_level.rs (GPT-2's pattern, ByteLevel use_regex=true).
// On CLIP's pieces it only ever splits the literal "<|startoftext|>" / "<|endoftext|>" that are
// not special tokens (e.g. "<|ENDOFTEXT|>" lower-cased) into "<|", "endoftext", "|>".
const BYTE_LEVEL_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`,
  'gu',
);

/**
 * GPT-2's reversible byte → printable character table (bytes_to_unicode): printable Latin-1
 * bytes map to themselves, the other 68 to U+0100 onwards in byte order.
 */
export function bytesToUnicode(): string[] {
  const table = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
}

const BYTE_CHARS = bytesToUnicode();
const utf8 = new TextEncoder();

/**
 * tokenizers' CLIP normaliser: NFC, whitespace runs → one space, then lower-casing of each
 * character on its own (Rust `char::to_lowercase`): Σ always becomes σ, never the final ς that
 * `String.prototype.toLowerCase` picks at the end of a word — the one context rule it applies.
 */
export function normalizeClipText(text: string): string {
  return text.normalize('NFC').replace(WHITESPACE_RUN, ' ').replaceAll('\u03a3', '\u03c3').toLowerCase();
}

/** A piece of text: either plain text or a special token's id. */
type Segment = string | number;

export class ClipTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  /** Default `maxLength` of `encode`: tokenizer_config.json `model_max_length` when sane, else 77. */
  readonly modelMaxLength: number;
  /** Number of ids (vocabulary plus special tokens declared outside it). */
  readonly vocabSize: number;

  readonly #vocab: ReadonlyMap<string, number>;
  /** "a b" → rank (position in merges.txt). */
  readonly #ranks = new Map<string, number>();
  readonly #rawSpecial: ClipSpecialToken[] = [];
  readonly #normalizedSpecial: ClipSpecialToken[] = [];
  readonly #cache = new Map<string, readonly number[]>();
  /** id → token, built on the first `idToToken` call. */
  #tokens: string[] | undefined;

  constructor(data: ClipTokenizerData) {
    this.#vocab = data.vocab;
    data.merges.forEach(([a, b], rank) => {
      const key = `${a} ${b}`;
      if (!this.#ranks.has(key)) this.#ranks.set(key, rank);
    });
    const idOf = (content: string, role: string): number => {
      const id = data.addedTokenIds?.get(content) ?? data.vocab.get(content);
      if (id === undefined) throw new Error(`The CLIP vocabulary has no ${role} token "${content}"`);
      return id;
    };
    const bos = data.bosToken ?? DEFAULT_BOS;
    const eos = data.eosToken ?? DEFAULT_EOS;
    const unk = data.unkToken ?? DEFAULT_EOS;
    const pad = data.padToken ?? DEFAULT_EOS;
    this.bosTokenId = idOf(bos, 'start (bos)');
    this.eosTokenId = idOf(eos, 'end (eos)');
    this.unkTokenId = idOf(unk, 'unknown (unk)');
    this.padTokenId = idOf(pad, 'padding (pad)');
    let maxId = -1;
    for (const id of data.vocab.values()) maxId = Math.max(maxId, id);
    for (const id of data.addedTokenIds?.values() ?? []) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.modelMaxLength = data.modelMaxLength ?? CLIP_CONTEXT_LENGTH;
    for (const content of new Set([bos, eos, unk, pad])) {
      const normalized = data.normalizedSpecialTokens?.has(content) ?? false;
      const token = { content: normalized ? normalizeClipText(content) : content, id: idOf(content, 'special'), normalized };
      (normalized ? this.#normalizedSpecial : this.#rawSpecial).push(token);
    }
  }

  /**
   * Reads the tokenizer of a checkpoint directory: vocab.json + merges.txt, or tokenizer.json
   * when that pair is absent; special_tokens_map.json / tokenizer_config.json, when present, give
   * the special tokens (pad token included), tokenizer_config.json `model_max_length`.
   * @throws Error naming the file for a missing or malformed tokenizer file.
   */
  static async load(dir: string): Promise<ClipTokenizer> {
    if (typeof dir !== 'string' || dir === '') throw invalidType('a directory path', 'dir', dir);
    const data = await readClipTokenizerFiles(dir);
    await yieldToEventLoop();
    return new ClipTokenizer(data);
  }

  /** The special tokens this tokenizer finds in text (bos, eos, unk, pad; deduplicated). */
  get specialTokens(): ClipSpecialToken[] {
    return [...this.#rawSpecial, ...this.#normalizedSpecial].map((t) => ({ ...t }));
  }

  /**
   * The ids of `text` without start/end tokens, truncation or padding (transformers'
   * `tokenizer(text, add_special_tokens=False)`).
   */
  encodeContent(text: string): number[] {
    if (typeof text !== 'string') throw invalidType('a string', 'text', text);
    return this.#content(text, Infinity);
  }

  /**
   * encodeContent, stopping once `limit` ids are there (truncation keeps no more): words are
   * tokenised independently, so the first ids are the same.
   */
  #content(text: string, limit: number): number[] {
    const ids: number[] = [];
    for (const raw of splitSpecial(text, this.#rawSpecial)) {
      if (ids.length >= limit) break;
      if (typeof raw === 'number') {
        ids.push(raw);
        continue;
      }
      for (const piece of splitSpecial(normalizeClipText(raw), this.#normalizedSpecial)) {
        if (typeof piece === 'number') ids.push(piece);
        else
          for (const word of preTokenize(piece)) {
            if (ids.length >= limit) break;
            for (const id of this.#bpe(word)) ids.push(id); // (a spread of a long word's ids overflows the stack)
          }
        if (ids.length >= limit) break;
      }
    }
    return ids;
  }

  /** The BPE tokens of `text` (vocabulary strings, `</w>` included), as transformers' `tokenize()`. */
  tokenize(text: string): string[] {
    return this.encodeContent(text).map((id) => this.idToToken(id) ?? '');
  }

  /** The vocabulary string of an id (special tokens included), or undefined for an unknown id. */
  idToToken(id: number): string | undefined {
    if (this.#tokens === undefined) {
      this.#tokens = [];
      for (const [token, i] of this.#vocab) this.#tokens[i] ??= token;
      for (const t of [...this.#rawSpecial, ...this.#normalizedSpecial]) this.#tokens[t.id] ??= t.content;
    }
    return this.#tokens[id];
  }

  /** Tokenises one text: `[bos, ...content, eos]`, truncated and padded as `options` say. */
  encode(text: string, options: ClipEncodeOptions = {}): ClipEncoding {
    if (typeof text !== 'string') throw invalidType('a string', 'text', text);
    return this.#encodeMany([text], options)[0];
  }

  /** Tokenises several texts; `padding: 'longest'` pads them to the longest of them. */
  encodeBatch(texts: readonly string[], options: ClipEncodeOptions = {}): ClipEncoding[] {
    if (!Array.isArray(texts)) throw invalidType('an array of strings', 'texts', texts);
    texts.forEach((t: unknown, i) => {
      if (typeof t !== 'string') throw invalidType('a string', `texts[${i}]`, t);
    });
    return this.#encodeMany(texts, options);
  }

  #encodeMany(texts: readonly string[], options: ClipEncodeOptions): ClipEncoding[] {
    const opts = validate.plainObject(options, 'options');
    const padding: ClipPadding =
      opts.padding === undefined ? 'none' : validate.oneOf(opts.padding, 'options.padding', PADDINGS);
    const truncation = opts.truncation === undefined ? true : validate.boolean(opts.truncation, 'options.truncation');
    const maxLength =
      opts.maxLength === undefined ? this.modelMaxLength : validate.integerInRange(opts.maxLength, 'options.maxLength', 2, MAX_SANE_LENGTH);

    const sequences = texts.map((text) => {
      let ids = this.#content(text, truncation ? maxLength - 2 : Infinity);
      if (ids.length > maxLength - 2 && truncation) ids = ids.slice(0, maxLength - 2);
      return [this.bosTokenId, ...ids, this.eosTokenId];
    });
    let length = 0;
    if (padding === 'max_length') length = maxLength;
    else if (padding === 'longest') length = Math.max(...sequences.map((s) => s.length));
    return sequences.map((ids) => {
      const n = Math.max(length, ids.length);
      const inputIds = new Int32Array(n).fill(this.padTokenId);
      inputIds.set(ids);
      const attentionMask = new Uint8Array(n);
      attentionMask.fill(1, 0, ids.length);
      return { inputIds, attentionMask };
    });
  }

  /**
   * BPE of one pre-tokenised word (already byte-mapped): symbols are its characters, the last
   * with `</w>`; the adjacent pair of lowest merge rank is merged (every occurrence, left to
   * right) until no pair has a rank. Results are cached per word.
   * ref: tokenization_clip.py (4.x) CLIPTokenizer.bpe; tokenizers/src/models/bpe/word.rs merge_all
   */
  #bpe(word: string): readonly number[] {
    const cached = this.#cache.get(word);
    if (cached !== undefined) return cached;
    let symbols = [...word];
    symbols[symbols.length - 1] += END_OF_WORD;
    while (symbols.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.#ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < best) {
          best = rank;
          first = symbols[i];
          second = symbols[i + 1];
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === first && symbols[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else merged.push(symbols[i]);
      }
      symbols = merged;
    }
    const ids = symbols.map((s) => this.#vocab.get(s) ?? this.unkTokenId);
    if (this.#cache.size >= BPE_CACHE_SIZE) this.#cache.clear();
    this.#cache.set(word, ids);
    return ids;
  }
}

/** Splits `text` at occurrences of the special tokens (leftmost, then longest, match). */
function splitSpecial(text: string, specials: readonly ClipSpecialToken[]): Segment[] {
  specials = specials.filter((s) => s.content !== ''); // (an empty token matches nowhere; indexOf would find it everywhere)
  if (specials.length === 0 || text === '') return text === '' ? [] : [text];
  const out: Segment[] = [];
  let pos = 0;
  for (;;) {
    let at = -1;
    let hit: ClipSpecialToken | undefined;
    for (const s of specials) {
      const i = text.indexOf(s.content, pos);
      if (i >= 0 && (at < 0 || i < at || (i === at && s.content.length > (hit?.content.length ?? 0)))) {
        at = i;
        hit = s;
      }
    }
    if (hit === undefined) break;
    if (at > pos) out.push(text.slice(pos, at));
    out.push(hit.id);
    pos = at + hit.content.length;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

/** Normalised text → byte-level words (each a string of bytes_to_unicode characters). */
function preTokenize(text: string): string[] {
  const words: string[] = [];
  for (const piece of text.match(CLIP_PATTERN) ?? []) {
    for (const part of piece.match(BYTE_LEVEL_PATTERN) ?? []) {
      let word = '';
      // Lone surrogates (impossible in Python strings) encode as U+FFFD's bytes.
      for (const byte of utf8.encode(part)) word += BYTE_CHARS[byte];
      words.push(word);
    }
  }
  return words;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint files
// ---------------------------------------------------------------------------------------------

/** tokenizer_config.json keys of the special tokens, in the order transformers assigns them. */
const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const;
/**
 * A `model_max_length` above this is transformers' "no limit" sentinel (1e30); 77 is used instead.
 * Also the largest `maxLength` encode takes (each padded sequence is an array of that length).
 */
const MAX_SANE_LENGTH = 1_000_000;

/** The largest token id (ids go to the model as int32). */
const MAX_TOKEN_ID = 2 ** 31 - 1;
function isTokenId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID;
}

/** Resolves after the event loop has run what was waiting (timers, I/O callbacks). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

/** vocab.json (or tokenizer.json's model.vocab): an object of token → non-negative integer id. */
function parseVocab(file: string, value: unknown, where = 'the file'): Map<string, number> {
  if (!validate.isPlainObject(value)) throw new Error(`${file}: ${where} must be a JSON object of token → id`);
  const vocab = new Map<string, number>();
  for (const token in value) {
    const id = value[token];
    if (!isTokenId(id)) {
      throw new Error(`${file}: the id of token ${describeValue(token)} is ${describeValue(id)}, not an integer from 0 to ${MAX_TOKEN_ID}`);
    }
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new Error(`${file}: the vocabulary is empty`);
  return vocab;
}

/** merges.txt: an optional `#version` line, then one "a b" pair per line; blank lines are skipped. */
function parseMergesText(file: string, text: string): [string, string][] {
  const merges: [string, string][] = [];
  const lines = text.split('\n');
  lines.forEach((rawLine, i) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`${file}: line ${i + 1} is ${describeValue(line.slice(0, 40))}, not a pair "a b"`);
    }
    merges.push([parts[0], parts[1]]);
  });
  if (merges.length === 0) throw new Error(`${file}: no merges`);
  return merges;
}

/** tokenizer.json's model.merges: "a b" strings (tokenizers < 0.20) or [a, b] pairs. */
function parseMergesJson(file: string, value: unknown): [string, string][] {
  if (!Array.isArray(value)) throw new Error(`${file}: model.merges must be an array`);
  return value.map((m: unknown, i) => {
    const parts = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(parts) || parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') {
      throw new Error(`${file}: model.merges[${i}] is not a pair "a b" or ["a", "b"]`);
    }
    return [parts[0], parts[1]] as [string, string];
  });
}

/** Every merge must join two tokens of the vocabulary into a third (tokenizers refuses otherwise). */
function checkMerges(file: string, merges: readonly (readonly [string, string])[], vocab: ReadonlyMap<string, number>): void {
  merges.forEach(([a, b], i) => {
    for (const token of [a, b, a + b]) {
      if (!vocab.has(token)) {
        throw new Error(`${file}: merge ${i + 1} ("${a} ${b}") uses ${describeValue(token)}, which is not in the vocabulary`);
      }
    }
  });
}

/** A special token entry: "text" or an AddedToken object {content, normalized, ...}. */
function specialToken(file: string, key: string, value: unknown): { content: string; normalized: boolean } | undefined {
  if (value === undefined || value === null) return undefined;
  const object = validate.isPlainObject(value) ? value : undefined;
  const content = typeof value === 'string' ? value : object?.content;
  if (typeof content !== 'string' || content === '') {
    throw new Error(`${file}: ${key} must be a non-empty string or an object with a non-empty "content" string`);
  }
  return { content, normalized: object?.normalized === true };
}

/**
 * Reads a checkpoint directory's tokenizer files into `ClipTokenizerData`.
 * @throws Error naming the file for a missing or malformed tokenizer file.
 */
export async function readClipTokenizerFiles(dir: string): Promise<ClipTokenizerData> {
  const vocabFile = path.join(dir, 'vocab.json');
  const mergesFile = path.join(dir, 'merges.txt');
  const jsonFile = path.join(dir, 'tokenizer.json');
  const configFile = path.join(dir, 'tokenizer_config.json');
  const mapFile = path.join(dir, 'special_tokens_map.json');
  const [vocabText, mergesText, configText, mapText] = await Promise.all(
    [vocabFile, mergesFile, configFile, mapFile].map(readModelText),
  );

  // CLIP's 49 k tokens and merges take ~150 ms of JS to parse and check: in steps of 20–40 ms,
  // with the event loop let through between them.
  let data: ClipTokenizerData & { vocab: Map<string, number>; normalizedSpecialTokens: Set<string> };
  let mergesSource: string;
  if (vocabText !== undefined && mergesText !== undefined) {
    const vocabJson = parseJson(vocabFile, vocabText);
    await yieldToEventLoop();
    const vocab = parseVocab(vocabFile, vocabJson);
    await yieldToEventLoop();
    data = { vocab, merges: parseMergesText(mergesFile, mergesText), normalizedSpecialTokens: new Set() };
    mergesSource = mergesFile;
  } else {
    const jsonText = await readModelText(jsonFile);
    if (jsonText === undefined) {
      if (vocabText === undefined && mergesText === undefined) {
        throw new Error(`${dir}: no CLIP tokenizer files (expected vocab.json + merges.txt, or tokenizer.json)`);
      }
      const missing = vocabText === undefined ? vocabFile : mergesFile;
      throw new Error(`${missing}: file not found (a CLIP tokenizer needs vocab.json and merges.txt, or tokenizer.json)`);
    }
    data = parseTokenizerJson(jsonFile, parseJson(jsonFile, jsonText));
    mergesSource = jsonFile;
  }
  await yieldToEventLoop();
  checkMerges(mergesSource, data.merges, data.vocab);

  // Special tokens as transformers (5.x) resolves them: special_tokens_map.json over
  // tokenizer_config.json, in the order bos, eos, unk, pad, a later plain string resetting the
  // `normalized` flag of the same content; tokenizer_config.json's added_tokens_decoder last.
  const config = configText === undefined ? {} : parseJson(configFile, configText);
  if (!validate.isPlainObject(config)) throw new Error(`${configFile}: must be a JSON object`);
  const map = mapText === undefined ? {} : parseJson(mapFile, mapText);
  if (!validate.isPlainObject(map)) throw new Error(`${mapFile}: must be a JSON object`);
  const roles: Record<(typeof SPECIAL_KEYS)[number], 'bosToken' | 'eosToken' | 'unkToken' | 'padToken'> = {
    bos_token: 'bosToken',
    eos_token: 'eosToken',
    unk_token: 'unkToken',
    pad_token: 'padToken',
  };
  for (const key of SPECIAL_KEYS) {
    const token = key in map ? specialToken(mapFile, key, map[key]) : specialToken(configFile, key, config[key]);
    if (token === undefined) continue;
    data[roles[key]] = token.content;
    if (token.normalized) data.normalizedSpecialTokens.add(token.content);
    else data.normalizedSpecialTokens.delete(token.content);
  }
  const decoder = config.added_tokens_decoder;
  if (decoder !== undefined) {
    if (!validate.isPlainObject(decoder)) throw new Error(`${configFile}: added_tokens_decoder must be an object`);
    for (const [id, entry] of Object.entries(decoder)) {
      const token = specialToken(configFile, `added_tokens_decoder["${id}"]`, entry);
      if (token === undefined) continue;
      if (token.normalized) data.normalizedSpecialTokens.add(token.content);
      else data.normalizedSpecialTokens.delete(token.content);
    }
  }
  const maxLength = config.model_max_length;
  if (typeof maxLength === 'number' && Number.isInteger(maxLength) && maxLength >= 2 && maxLength <= MAX_SANE_LENGTH) {
    data.modelMaxLength = maxLength;
  }
  return data;
}

/** tokenizer.json (tokenizers' serialisation): model.vocab, model.merges and added_tokens. */
function parseTokenizerJson(
  file: string,
  json: unknown,
): ClipTokenizerData & { vocab: Map<string, number>; normalizedSpecialTokens: Set<string> } {
  if (!validate.isPlainObject(json) || !validate.isPlainObject(json.model)) {
    throw new Error(`${file}: expected an object with a "model" object`);
  }
  const model = json.model;
  if (model.type !== 'BPE' || model.end_of_word_suffix !== END_OF_WORD) {
    throw new Error(`${file}: not a CLIP tokenizer (model.type must be "BPE" with end_of_word_suffix "${END_OF_WORD}")`);
  }
  const vocab = parseVocab(file, model.vocab, 'model.vocab');
  const merges = parseMergesJson(file, model.merges);
  const addedTokenIds = new Map<string, number>();
  const normalizedSpecialTokens = new Set<string>();
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new Error(`${file}: added_tokens must be an array`);
  added.forEach((entry: unknown, i) => {
    if (!validate.isPlainObject(entry) || typeof entry.content !== 'string' || entry.content === '' || !isTokenId(entry.id)) {
      throw new Error(`${file}: added_tokens[${i}] must be an object with a non-empty "content" and an "id" from 0 to ${MAX_TOKEN_ID}`);
    }
    addedTokenIds.set(entry.content, entry.id);
    if (entry.normalized === true) normalizedSpecialTokens.add(entry.content);
  });
  const unk = typeof model.unk_token === 'string' ? model.unk_token : undefined;
  return { vocab, merges, addedTokenIds, normalizedSpecialTokens, unkToken: unk };
}
