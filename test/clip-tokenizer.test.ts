// The CLIP tokenizer against transformers' CLIPTokenizer on the real CLIP vocabulary.
// Reference ids: test/fixtures/clip/tokenizer_cases.json, written by
// models/clip/generate_tokenizer_fixtures.py. The vocabulary itself (1.5 MB) is not committed:
// it is read from ../shared/clip-tokenizer/ beside the repository, and this file fails (not
// skips) when that folder is missing.
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BPE_CACHE_SIZE, bytesToUnicode, ClipTokenizer, normalizeClipText } from '../lib/clip/tokenizer.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VOCAB_DIR = path.resolve(REPO, '..', 'shared', 'clip-tokenizer');
const FIXTURE = path.join(REPO, 'test', 'fixtures', 'clip', 'tokenizer_cases.json');

interface Case {
  name: string;
  config: string;
  text?: string;
  texts?: string[];
  padding: 'none' | 'longest' | 'max_length';
  truncation: boolean;
  maxLength: number;
  inputIds: number[] | number[][];
  attentionMask: number[] | number[][];
}

const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
  transformers: string;
  vocabSize: number;
  configs: Record<string, Record<string, unknown>>;
  cases: Case[];
};

let root: string;
const tokenizers = new Map<string, ClipTokenizer>();

/** A directory with the shared vocab.json + merges.txt and the given extra files. */
async function tokenizerDir(name: string, files: Record<string, string> = {}, copy = ['vocab.json', 'merges.txt']): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  for (const f of copy) await copyFile(path.join(VOCAB_DIR, f), path.join(dir, f));
  for (const [f, text] of Object.entries(files)) await writeFile(path.join(dir, f), text);
  return dir;
}

async function loadError(dir: string): Promise<Error> {
  try {
    await ClipTokenizer.load(dir);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`expected ClipTokenizer.load(${dir}) to fail`);
}

beforeAll(async () => {
  if (!existsSync(path.join(VOCAB_DIR, 'vocab.json')) || !existsSync(path.join(VOCAB_DIR, 'merges.txt'))) {
    throw new Error(
      `The real CLIP vocabulary is missing: expected vocab.json and merges.txt in ${VOCAB_DIR} ` +
        '(the shared folder beside the repository); these tests cannot run without it',
    );
  }
  root = await mkdtemp(path.join(tmpdir(), 'omniseg-clip-tok-'));
  for (const [name, config] of Object.entries(fixture.configs)) {
    const files = Object.fromEntries(Object.entries(config).map(([file, json]) => [file, JSON.stringify(json)]));
    tokenizers.set(name, await ClipTokenizer.load(await tokenizerDir(name, files)));
  }
});

afterAll(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

function run(tok: ClipTokenizer, c: Case, texts: string[]): { ids: number[][]; mask: number[][] } {
  const out = tok.encodeBatch(texts, { padding: c.padding, truncation: c.truncation, maxLength: c.maxLength });
  return { ids: out.map((e) => Array.from(e.inputIds)), mask: out.map((e) => Array.from(e.attentionMask)) };
}

describe('CLIP tokenizer vs transformers CLIPTokenizer', () => {
  it('has the fixture cases and the vocabulary size of the reference', () => {
    expect(fixture.cases.length).toBeGreaterThan(60);
    const plain = tokenizers.get('plain')!;
    expect(plain.vocabSize).toBe(fixture.vocabSize);
    expect([plain.bosTokenId, plain.eosTokenId, plain.padTokenId, plain.unkTokenId]).toEqual([49406, 49407, 49407, 49407]);
    expect(tokenizers.get('pad_bang')!.padTokenId).toBe(0);
    expect(tokenizers.get('pad_bang_map')!.padTokenId).toBe(0);
  });

  it.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const tok = tokenizers.get(c.config)!;
    if (c.texts !== undefined) {
      const { ids, mask } = run(tok, c, c.texts);
      expect(ids).toEqual(c.inputIds);
      expect(mask).toEqual(c.attentionMask);
    } else {
      const e = tok.encode(c.text!, { padding: c.padding, truncation: c.truncation, maxLength: c.maxLength });
      expect(Array.from(e.inputIds)).toEqual(c.inputIds);
      expect(Array.from(e.attentionMask)).toEqual(c.attentionMask);
    }
  });

  it('gives the same ids from a tokenizer.json alone (merges as strings and as pairs)', async () => {
    const vocab = JSON.parse(await readFile(path.join(VOCAB_DIR, 'vocab.json'), 'utf8')) as Record<string, number>;
    const lines = (await readFile(path.join(VOCAB_DIR, 'merges.txt'), 'utf8')).split('\n').slice(1).filter((l) => l !== '');
    const added = [
      { id: 49406, content: '<|startoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 49407, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ];
    for (const [name, merges] of [
      ['json_strings', lines],
      ['json_pairs', lines.map((l) => l.split(' '))],
    ] as const) {
      const model = { type: 'BPE', unk_token: '<|endoftext|>', end_of_word_suffix: '</w>', vocab, merges };
      const dir = await tokenizerDir(name, { 'tokenizer.json': JSON.stringify({ added_tokens: added, model }) }, []);
      const tok = await ClipTokenizer.load(dir);
      for (const c of fixture.cases.filter((k) => k.config === 'plain')) {
        const { ids, mask } = run(tok, c, c.texts ?? [c.text!]);
        expect(c.texts ? ids : ids[0], c.name).toEqual(c.inputIds);
        expect(c.texts ? mask : mask[0], c.name).toEqual(c.attentionMask);
      }
    }
  });
});

describe('CLIP tokenizer behaviour', () => {
  it('tokenises very long texts: a long word\'s ids (a spread of them overflowed the stack), truncation from the first words', async () => {
    const tok = await ClipTokenizer.load(VOCAB_DIR);
    const word = '\u6f22\u5b57'.repeat(50_000); // one word of 100 k CJK letters, ~100 k+ ids
    expect(tok.encode(word).inputIds.length).toBe(77);
    expect(tok.encodeContent(word).length).toBeGreaterThan(1000);
    const text = Array.from({ length: 20_000 }, (_, i) => `word${i % 97} ${i % 2 ? 'photo' : 'of a cat'}`).join(' ');
    const all = tok.encode(text, { truncation: false }).inputIds;
    const truncated = tok.encode(text).inputIds;
    expect(all.length).toBeGreaterThan(20_000);
    expect(Array.from(truncated)).toEqual([...Array.from(all.slice(0, 76)), tok.eosTokenId]);
    const short = tok.encode(text, { maxLength: 5 }).inputIds;
    expect(Array.from(short)).toEqual([...Array.from(all.slice(0, 4)), tok.eosTokenId]);
  });

  it('maps the 256 bytes to distinct printable characters (bytes_to_unicode)', () => {
    const table = bytesToUnicode();
    expect(new Set(table).size).toBe(256);
    expect(table[0x20]).toBe('\u0120'); // space → Ġ
    expect(table[0x41]).toBe('A');
    expect(table[0xad]).toBe('\u0143');
  });

  it('normalises as tokenizers does: NFC, Oniguruma whitespace, per-character lower case', () => {
    expect(normalizeClipText('Cafe\u0301  \t\nBAR')).toBe('caf\u00e9 bar');
    expect(normalizeClipText('a\u0085b\ufeffc')).toBe('a b\ufeffc');
    expect(normalizeClipText('\u039f\u0394\u039f\u03a3')).toBe('\u03bf\u03b4\u03bf\u03c3');
  });

  it('tokenize() returns the vocabulary strings with the end-of-word marker', () => {
    const tok = tokenizers.get('plain')!;
    expect(tok.tokenize("It's a photo!")).toEqual(['it</w>', "'s</w>", 'a</w>', 'photo</w>', '!</w>']);
    expect(tok.tokenize('<|endoftext|>')).toEqual(['<|endoftext|>']);
    expect(tok.encodeContent('')).toEqual([]);
  });

  it('truncates to maxLength with <|endoftext|> last, and defaults to 77', () => {
    const tok = tokenizers.get('plain')!;
    const long = 'cat '.repeat(200);
    const e = tok.encode(long);
    expect(e.inputIds.length).toBe(77);
    expect(e.inputIds[0]).toBe(49406);
    expect(e.inputIds[76]).toBe(49407);
    expect(tok.encode(long, { truncation: false }).inputIds.length).toBe(202);
    expect(tok.encode('a cat', { padding: 'max_length' }).inputIds.length).toBe(77);
  });

  it('caches BPE results without changing them', () => {
    const tok = tokenizers.get('plain')!;
    const text = 'supercalifragilisticexpialidocious antidisestablishmentarianism';
    const first = Array.from(tok.encode(text).inputIds);
    expect(Array.from(tok.encode(text).inputIds)).toEqual(first);
    // Fill past the cache size: the cache is emptied and results stay the same.
    for (let i = 0; i <= BPE_CACHE_SIZE; i += 500) tok.encodeContent(Array.from({ length: 500 }, (_, k) => `w${i + k}x`).join(' '));
    expect(Array.from(tok.encode(text).inputIds)).toEqual(first);
  });

  it('validates its arguments with the shared message template', () => {
    const tok = tokenizers.get('plain')!;
    expect(() => tok.encode(42 as unknown as string)).toThrow(new TypeError('Expected a string for text but received 42 of type number'));
    expect(() => tok.encodeBatch(['a', null as unknown as string])).toThrow(
      new TypeError('Expected a string for texts[1] but received null of type null'),
    );
    expect(() => tok.encode('a', { padding: 'max' as 'none' })).toThrow(
      new RangeError(`Expected one of 'none', 'longest', 'max_length' for options.padding but received "max" of type string`),
    );
    expect(() => tok.encode('a', { maxLength: 1 })).toThrow(
      new RangeError('Expected an integer between 2 and 1000000 for options.maxLength but received 1 of type number'),
    );
    // (each padded sequence is an array of maxLength ids: a huge one is refused, not allocated)
    expect(() => tok.encode('a', { maxLength: 2 ** 40, padding: 'max_length' })).toThrow(
      new RangeError('Expected an integer between 2 and 1000000 for options.maxLength but received 1099511627776 of type number'),
    );
    expect(() => tok.encode('a', { truncation: 'yes' as unknown as boolean })).toThrow(TypeError);
  });
});

describe('CLIP tokenizer files', () => {
  it('lets the event loop run while it parses and checks CLIP\'s 49 k tokens and merges', async () => {
    await ClipTokenizer.load(VOCAB_DIR); // warm-up (the files in the page cache, the code compiled)
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    const start = performance.now();
    try {
      await ClipTokenizer.load(VOCAB_DIR);
    } finally {
      clearInterval(timer);
    }
    const end = performance.now();
    longest = Math.max(longest, end - last); // the work since the last tick
    const total = end - start;
    // In one piece, the JS work after reading the files (~150 ms here) is ~90 % of the load; in
    // its steps, the longest is ~40 %.
    expect(longest, `longest gap ${longest.toFixed(1)} of ${total.toFixed(1)} ms`).toBeLessThan(0.65 * total);
  });

  it('names the directory when it has no tokenizer files', async () => {
    const dir = await tokenizerDir('empty', {}, []);
    expect((await loadError(dir)).message).toBe(`${dir}: no CLIP tokenizer files (expected vocab.json + merges.txt, or tokenizer.json)`);
  });

  it('names merges.txt when only vocab.json is there', async () => {
    const dir = await tokenizerDir('no_merges', {}, ['vocab.json']);
    expect((await loadError(dir)).message).toMatch(/merges\.txt: file not found/);
  });

  it('names vocab.json when only merges.txt is there', async () => {
    const dir = await tokenizerDir('no_vocab', {}, ['merges.txt']);
    expect((await loadError(dir)).message).toMatch(/vocab\.json: file not found/);
  });

  it('names vocab.json when it is not JSON, not an object, or has a bad id', async () => {
    const bad = await tokenizerDir('vocab_bad_json', { 'vocab.json': '{"a": 1,' }, ['merges.txt']);
    expect((await loadError(bad)).message).toMatch(/vocab\.json: not valid JSON/);
    const arr = await tokenizerDir('vocab_array', { 'vocab.json': '["a", "b"]' }, ['merges.txt']);
    expect((await loadError(arr)).message).toMatch(/vocab\.json: the file must be a JSON object of token → id/);
    const id = await tokenizerDir('vocab_bad_id', { 'vocab.json': '{"a": -1}' }, ['merges.txt']);
    expect((await loadError(id)).message).toMatch(/vocab\.json: the id of token "a" is -1, not an integer from 0 to 2147483647/);
    const big = await tokenizerDir('vocab_big_id', { 'vocab.json': '{"a": 4294967358}' }, ['merges.txt']);
    expect((await loadError(big)).message).toMatch(/vocab\.json: the id of token "a" is 4294967358, not an integer from 0 to 2147483647/);
    // a deeply nested value is described, not serialised (JSON.stringify overflowed the stack)
    const deep = await tokenizerDir('vocab_deep', { 'vocab.json': `{"a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}` }, ['merges.txt']);
    expect((await loadError(deep)).message).toMatch(/vocab\.json: the id of token "a" is \[\[\[.*, not an integer/);
  });

  it('names merges.txt and the line for a malformed merge', async () => {
    const dir = await tokenizerDir('merges_bad_line', { 'merges.txt': '#version: 0.2\ni n\nthree parts here\n' }, ['vocab.json']);
    expect((await loadError(dir)).message).toMatch(/merges\.txt: line 3 is "three parts here", not a pair "a b"/);
    const empty = await tokenizerDir('merges_empty', { 'merges.txt': '#version: 0.2\n' }, ['vocab.json']);
    expect((await loadError(empty)).message).toMatch(/merges\.txt: no merges/);
  });

  it('names merges.txt when a merge uses a token outside the vocabulary', async () => {
    const dir = await tokenizerDir('merges_oov', { 'merges.txt': '#version: 0.2\ni n\nq\u0100 zz\n' }, ['vocab.json']);
    expect((await loadError(dir)).message).toMatch(/merges\.txt: merge 2 \("q\u0100 zz"\) uses "q\u0100", which is not in the vocabulary/);
  });

  it('names the file for a bad tokenizer_config.json or a special token missing from the vocabulary', async () => {
    const bad = await tokenizerDir('config_bad', { 'tokenizer_config.json': '{' });
    expect((await loadError(bad)).message).toMatch(/tokenizer_config\.json: not valid JSON/);
    const pad = await tokenizerDir('config_pad', { 'tokenizer_config.json': '{"pad_token": 5}' });
    expect((await loadError(pad)).message).toMatch(/tokenizer_config\.json: pad_token must be a non-empty string or an object/);
    // an empty special token would match everywhere (splitting text at it never advanced)
    const empty = await tokenizerDir('map_empty', { 'special_tokens_map.json': '{"pad_token": ""}' });
    expect((await loadError(empty)).message).toMatch(/special_tokens_map\.json: pad_token must be a non-empty string/);
    const emptyContent = await tokenizerDir('config_empty', { 'tokenizer_config.json': '{"unk_token": {"content": ""}}' });
    expect((await loadError(emptyContent)).message).toMatch(/tokenizer_config\.json: unk_token must be a non-empty string or an object with a non-empty "content"/);
    const missing = await tokenizerDir('config_missing', { 'tokenizer_config.json': '{"pad_token": "<pad>"}' });
    expect((await loadError(missing)).message).toBe('The CLIP vocabulary has no padding (pad) token "<pad>"');
  });

  it('names tokenizer.json when it is malformed or not a CLIP BPE', async () => {
    const bad = await tokenizerDir('json_bad', { 'tokenizer.json': 'nope' }, []);
    expect((await loadError(bad)).message).toMatch(/tokenizer\.json: not valid JSON/);
    const wp = await tokenizerDir('json_wordpiece', { 'tokenizer.json': '{"model": {"type": "WordPiece", "vocab": {"a": 0}}}' }, []);
    expect((await loadError(wp)).message).toMatch(/tokenizer\.json: not a CLIP tokenizer/);
    const merges = await tokenizerDir(
      'json_merges',
      { 'tokenizer.json': '{"model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": {"a": 0}, "merges": [1]}}' },
      [],
    );
    expect((await loadError(merges)).message).toMatch(/tokenizer\.json: model\.merges\[0\] is not a pair/);
    for (const id of ['-1', '62.5', '4294967358', '"3"']) {
      const added = await tokenizerDir(
        `json_added_${id.replace(/\W/g, '_')}`,
        { 'tokenizer.json': `{"model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": ${id}, "content": "<x>"}]}` },
        [],
      );
      expect((await loadError(added)).message, id).toMatch(/tokenizer\.json: added_tokens\[0\] must be an object with a non-empty "content" and an "id" from 0 to 2147483647/);
    }
  });

  it('rejects a non-string directory with a TypeError', async () => {
    await expect(ClipTokenizer.load(3 as unknown as string)).rejects.toThrow(TypeError);
  });
});
