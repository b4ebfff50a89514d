"""Generate the CLIP tokenizer reference cases in test/fixtures/clip/tokenizer_cases.json (committed, small).

Run:  bash scripts/setup-python.sh && .venv/bin/python models/clip/generate_tokenizer_fixtures.py
      .venv/bin/python models/clip/generate_tokenizer_fixtures.py --check-slow   (see below)

Reference = Hugging Face transformers' ``CLIPTokenizer`` loaded with ``from_pretrained`` from the real
CLIP vocabulary in ../shared/clip-tokenizer/ (vocab.json + merges.txt, 49,408 tokens; not copied into
the repository).  In transformers >= 5 ``CLIPTokenizer`` *is* the `tokenizers`-backed ("fast") one; in
transformers 4.x that pipeline is ``CLIPTokenizerFast`` and ``CLIPTokenizer`` is the pure-Python
("slow") one.  The fixtures always come from the fast pipeline (what CLIPSeg's processor uses in
transformers 5); the script asserts that it gives the same ids loaded from vocab.json + merges.txt
and from a tokenizer.json alone.  No ftfy is involved on this path (transformers 5 never calls it).

The fast pipeline, which lib/clip/tokenizer.ts reproduces:
  1. special tokens (bos/eos/unk/pad, exact, case-sensitive) are cut out of the raw text; tokens
     flagged ``normalized`` are cut out of the normalised text instead;
  2. normaliser: NFC -> every run of Oniguruma ``\\s`` (includes U+0085, excludes U+FEFF) becomes
     one space -> per-character lower-casing (no Greek final-sigma rule);
  3. pre-tokeniser: the matches of CLIP's pattern
     ``<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``
     (everything between matches is dropped), each then split by GPT-2's byte-level pattern and
     mapped byte -> printable character (bytes_to_unicode);
  4. BPE with merges by rank, ``</w>`` appended to the last symbol of every word;
  5. ``<|startoftext|>`` ... ``<|endoftext|>`` around the ids (RobertaProcessing); truncation keeps
     the first max_length - 2 content ids; padding on the right with the pad token, mask 0.

--check-slow (needs transformers 4.x, whose CLIPTokenizer is the Python one; ftfy absent): re-runs
every case through the slow tokenizer and prints where it disagrees with the committed fixtures.
Without ftfy the slow tokenizer cleans text with BERT's BasicTokenizer, so it differs from the fast
one on CJK ideographs (each becomes its own word), control/format characters such as U+200B (removed)
and Greek final sigma (Python's str.lower).

tokenizer_cases.json:
  {
    "transformers": version, "tokenizers": version, "vocabSize": 49408,
    "configs": {name: {file name: JSON contents}},   (tokenizer_config.json / special_tokens_map.json,
                                                     written beside vocab.json + merges.txt)
    "cases": [{"name": str, "config": name,
               "text": str | "texts": [str, ...],               (one text, or a batch)
               "padding": "none" | "longest" | "max_length", "truncation": bool, "maxLength": int,
               "inputIds": [int, ...] | [[int, ...], ...],
               "attentionMask": [0|1, ...] | [[0|1, ...], ...]}]
  }
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VOCAB_DIR = (REPO_ROOT / ".." / "shared" / "clip-tokenizer").resolve()
OUT_DEFAULT = REPO_ROOT / "test" / "fixtures" / "clip" / "tokenizer_cases.json"

LONG_EN = (
    "A very long description of a photograph, written to run past the seventy-seven token limit of "
    "CLIP's text encoder: a small grey cat with white paws sits on a red woollen blanket next to a "
    "window, while outside the rain falls on a quiet street lined with old brick houses, parked "
    "bicycles, two lamp posts and a bakery whose sign reads 'Fresh bread daily since 1923'; inside, "
    "a wooden table holds three cups of coffee, a newspaper folded in half and a vase of tulips."
)

# Special-token configurations: files written beside vocab.json + merges.txt.
CONFIGS: dict[str, dict[str, dict]] = {
    "plain": {},  # vocab.json + merges.txt only: pad = unk = eos = <|endoftext|>, raw-text matching
    # Some CLIP checkpoints (e.g. Stable Diffusion 2's) pad with "!" (id 0); "!" becomes special.
    "pad_bang": {"tokenizer_config.json": {"pad_token": "!", "model_max_length": 77}},
    # special_tokens_map.json wins over tokenizer_config.json.
    "pad_bang_map": {"tokenizer_config.json": {"pad_token": "<|endoftext|>"},
                     "special_tokens_map.json": {"pad_token": "!"}},
    # transformers >= 4.34 layout: per-token flags in added_tokens_decoder (normalized: true means the
    # token is also found after lower-casing).
    "decoder_normalized": {"tokenizer_config.json": {
        "added_tokens_decoder": {
            "49406": {"content": "<|startoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                      "single_word": False, "special": True},
            "49407": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                      "single_word": False, "special": True},
        },
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 77, "tokenizer_class": "CLIPTokenizer",
    }},
    # Older layout (openai/clip-vit-*, CIDAS/clipseg-*): AddedToken dicts; a later plain string for the
    # same content (pad_token) resets the flag, so only <|startoftext|> ends up normalised.
    "legacy_normalized": {"tokenizer_config.json": {
        "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", "lstrip": False,
                      "normalized": True, "rstrip": False, "single_word": False},
        "eos_token": {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False,
                      "normalized": True, "rstrip": False, "single_word": False},
        "unk_token": {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False,
                      "normalized": True, "rstrip": False, "single_word": False},
        "pad_token": "<|endoftext|>", "do_lower_case": True, "errors": "replace", "model_max_length": 77,
        "tokenizer_class": "CLIPTokenizer",
    }},
}

# (name, text). Every one is run with truncation to 77 and no padding.
TEXTS: list[tuple[str, str]] = [
    ("simple", "a photo of a cat"),
    ("mixed_case", "A PHOTO Of A CaT on The MAT"),
    ("contractions", "it's don't we're they've I'm you'll he'd"),
    ("contractions_upper", "IT'S DON'T WE'RE THEY'VE I'M YOU'LL HE'D"),
    ("contraction_prefix", "'sample 'tis 'rest 'making 'll 'dd"),
    ("curly_apostrophe", "it\u2019s the cat\u2019s toy"),
    ("accents", "caf\u00e9 na\u00efve r\u00e9sum\u00e9 d\u00e9j\u00e0 vu \u00c5ngstr\u00f6m fa\u00e7ade \u00d1and\u00fa"),
    ("decomposed_accents", "cafe\u0301 nai\u0308ve A\u030angstro\u0308m"),
    ("german", "Stra\u00dfe \u00c4\u00d6\u00dc \u1e9e gro\u00df"),
    ("greek_sigma", "\u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3 \u03a3 \u03bf\u03b4\u03bf\u03c2"),
    ("turkish_dotted_i", "\u0130stanbul D\u0130YARBAKIR \u0131\u015f\u0131k"),
    ("cyrillic", "\u041f\u0440\u0438\u0432\u0435\u0442 \u041c\u0418\u0420, \u043a\u043e\u0448\u043a\u0430!"),
    ("cjk_chinese", "\u4e00\u53ea\u732b\u5750\u5728\u57ab\u5b50\u4e0a"),
    ("cjk_japanese", "\u732b\u304c\u30de\u30c3\u30c8\u306e\u4e0a\u306b\u5ea7\u3063\u3066\u3044\u308b\u3002"),
    ("cjk_korean", "\uace0\uc591\uc774\uac00 \ub9e4\ud2b8 \uc704\uc5d0 \uc549\uc544 \uc788\ub2e4"),
    ("cjk_mixed_latin", "a \u732b cat\u548cdog \u72d7123"),
    ("rtl_and_indic", "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0938\u094d\u0935\u093e\u0917\u0924 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35"),
    ("emoji", "a \U0001f431 on a \U0001f6cb\ufe0f with \U0001f468\u200d\U0001f469\u200d\U0001f467 and \U0001f1eb\U0001f1f7 \U0001f600\U0001f600!"),
    ("emoji_skin_tone", "\U0001f44d\U0001f3fd thumbs up\U0001f44b"),
    ("punctuation", "Hello, world! What's up?? ...yes; no: (maybe) [x] {y} <z> \"quoted\" -- em\u2014dash"),
    ("only_punctuation", "!!!???...,,,;;;"),
    ("only_symbols", "-- -- --- ~~~ *** @#$%^&*() \u00a9\u00ae\u2122 \u00a7\u00b6"),
    ("numbers", "3.14159 1,000,000 2024-01-01 42nd 7x7 0.5kg $19.99"),
    ("unicode_numbers", "\u00b2\u00b3 \u00bd \u0663\u0664 \u096a\u096b \u2460\u2461 \u2166 \uff11\uff12"),
    ("repeated_spaces", "  a   lot\tof \t\t white   space  "),
    ("newlines_tabs", "line one\nline two\r\nline three\n\n\n\tindented\vvertical\fform"),
    ("unicode_spaces", "a\u00a0b\u3000c\u2003d\u0085e\u2028f\u2029g\u202fh\u205fi\u1680j"),
    ("bom_not_space", "a\ufeffb \ufeff c"),
    ("zero_width", "zero\u200bwidth\u200cnon\u200djoiner\u2060word\u00adsoft \u200b"),
    ("control_chars", "a\u0001b\u0007c\u001bd\u007fe\u0000f"),
    ("empty", ""),
    ("only_whitespace", "   \n\t  "),
    ("html_entities", "Tom &amp; Jerry &lt;3 &quot;quoted&quot; &#39;s &nbsp; &eacute;t&eacute; &#x1F431;"),
    ("html_tags", "<b>bold</b> <a href=\"x\">link</a>"),
    ("url_email", "https://example.com/path?q=1&x=y#frag user.name@mail.org"),
    ("code", "def f(x): return x**2 + 1  # comment"),
    ("fullwidth_ligature", "\ufb01ne \uff21\uff22\uff23 \uff41\uff42\uff43 \u2167"),
    ("zalgo", "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307lgo\u0319"),
    ("repeated_words", "the the the the cat cat cat the"),
    ("long_word", "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis"),
    ("single_letter_run", "a" * 120),
    ("special_in_text", "hello<|endoftext|>world <|startoftext|>a photo<|endoftext|>"),
    ("special_upper", "x<|ENDOFTEXT|>y <|StartOfText|>"),
    ("special_partial", "<|endoftext| <|start <|>"),
    ("long_english", LONG_EN),
    ("long_cjk", "\u4e00\u53ea\u732b\u5750\u5728\u57ab\u5b50\u4e0a\uff0c" * 12),
    ("long_emoji", "\U0001f431\U0001f436" * 30),
    ("long_numbers", " ".join(str(i) for i in range(60))),
]

# Exactly at the limit: 75 content tokens (fills 77) and 76 (one cut).
BOUNDARY = [("limit_75", " ".join(["cat"] * 75)), ("limit_76", " ".join(["cat"] * 76))]

# (name, config, text or texts, padding, truncation, maxLength)
EXTRA: list[tuple[str, str, str | list[str], str, bool, int]] = [
    ("pad_max_simple", "plain", "a photo of a cat", "max_length", True, 77),
    ("pad_max_empty", "plain", "", "max_length", True, 77),
    ("pad_max_long", "plain", LONG_EN, "max_length", True, 77),
    ("pad_max_limit_76", "plain", " ".join(["cat"] * 76), "max_length", True, 77),
    ("pad_max_special", "plain", "hello<|endoftext|>world", "max_length", True, 77),
    ("no_truncation_long", "plain", LONG_EN, "none", False, 77),
    ("short_max_length", "plain", LONG_EN, "max_length", True, 16),
    ("short_max_length_nopad", "plain", "a photo of a cat", "none", True, 5),
    ("batch_longest", "plain", ["a", "a photo of a cat", "", "Hello, World!"], "longest", True, 77),
    ("batch_max_length", "plain", ["a dog", LONG_EN], "max_length", True, 77),
    ("batch_none", "plain", ["a dog", "two cats on a sofa"], "none", True, 77),
    ("pad_bang_text", "pad_bang", "hello world!! ! a!b", "max_length", True, 12),
    ("pad_bang_batch", "pad_bang", ["a", "hi!"], "longest", True, 77),
    ("pad_bang_map_text", "pad_bang_map", "hi! there", "max_length", True, 8),
    ("decoder_normalized_special", "decoder_normalized", "x<|ENDOFTEXT|>y <|StartOfText|> <|endoftext|>",
     "none", True, 77),
    ("legacy_normalized_special", "legacy_normalized", "x<|ENDOFTEXT|>y <|StartOfText|> <|endoftext|>",
     "none", True, 77),
]


def write_config_dir(root: Path, name: str, files: dict[str, dict]) -> Path:
    d = root / name
    d.mkdir()
    for f in ("vocab.json", "merges.txt"):
        shutil.copyfile(VOCAB_DIR / f, d / f)
    for f, contents in files.items():
        (d / f).write_text(json.dumps(contents))
    return d


def encode(tok, text, padding: str, truncation: bool, max_length: int):
    kw = dict(truncation=truncation, max_length=max_length if truncation or padding == "max_length" else None)
    if padding == "longest":
        kw["padding"] = "longest"
    elif padding == "max_length":
        kw["padding"] = "max_length"
    enc = tok(text, **kw)
    return enc["input_ids"], enc["attention_mask"]


def all_cases():
    for name, text in TEXTS + BOUNDARY:
        yield name, "plain", text, "none", True, 77
    yield from EXTRA


def fast_class():
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return transformers.CLIPTokenizer
    return transformers.CLIPTokenizerFast


def generate(out: Path) -> None:
    import tokenizers
    import transformers

    if not (VOCAB_DIR / "vocab.json").is_file():
        sys.exit(f"missing {VOCAB_DIR}/vocab.json (the shared CLIP vocabulary)")
    cls = fast_class()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        toks = {name: cls.from_pretrained(write_config_dir(root, name, cfg)) for name, cfg in CONFIGS.items()}

        # The same pipeline from a tokenizer.json alone must give the same ids.
        only_json = root / "tokenizer_json_only"
        toks["plain"].backend_tokenizer.save(str(root / "tokenizer.json"))
        only_json.mkdir()
        shutil.move(str(root / "tokenizer.json"), only_json / "tokenizer.json")
        from_json = cls.from_pretrained(only_json)

        cases = []
        for name, config, text, padding, truncation, max_length in all_cases():
            tok = toks[config]
            ids, mask = encode(tok, text, padding, truncation, max_length)
            if config == "plain":
                ids2, mask2 = encode(from_json, text, padding, truncation, max_length)
                assert (ids2, mask2) == (ids, mask), f"{name}: tokenizer.json gives {ids2} != {ids}"
            case = {"name": name, "config": config}
            case["texts" if isinstance(text, list) else "text"] = text
            case.update(padding=padding, truncation=truncation, maxLength=max_length,
                        inputIds=ids, attentionMask=mask)
            cases.append(case)

        # Sanity: the ids the README of the shared vocabulary states.
        assert toks["plain"].bos_token_id == 49406 and toks["plain"].eos_token_id == 49407
        assert toks["plain"].pad_token_id == 49407 and toks["pad_bang"].pad_token_id == 0
        assert toks["pad_bang_map"].pad_token_id == 0
        vocab_size = len(toks["plain"])

    doc = {
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "vocabSize": vocab_size,
        "configs": CONFIGS,
        "cases": cases,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    # One case per line: small diffs when the reference changes.
    lines = [json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=True)[:-1] + ', "cases": [']
    lines += [json.dumps(c, ensure_ascii=True) + ("," if i + 1 < len(cases) else "") for i, c in enumerate(cases)]
    lines.append("]}")
    out.write_text("\n".join(lines) + "\n")
    json.loads(out.read_text())
    print(f"wrote {len(cases)} cases to {out} ({out.stat().st_size} bytes)")


def check_slow(fixtures: Path) -> None:
    """Compare the committed (fast) fixtures with transformers 4.x's Python CLIPTokenizer."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        sys.exit("--check-slow needs transformers 4.x (in 5.x CLIPTokenizer is the tokenizers-backed one)")
    doc = json.loads(fixtures.read_text())
    differ = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        toks = {name: transformers.CLIPTokenizer.from_pretrained(write_config_dir(root, name, cfg))
                for name, cfg in doc["configs"].items()}
        print(f"slow tokenizer: transformers {transformers.__version__}, ftfy "
              f"{'present' if toks['plain'].fix_text is not None else 'absent'}")
        for case in doc["cases"]:
            text = case.get("text", case.get("texts"))
            ids, mask = encode(toks[case["config"]], text, case["padding"], case["truncation"], case["maxLength"])
            if ids != case["inputIds"] or mask != case["attentionMask"]:
                differ += 1
                print(f"DIFFERS {case['name']}: {text!r}\n  fast {case['inputIds']}\n  slow {ids}")
    print(f"{differ} of {len(doc['cases'])} cases differ between the slow and the fast tokenizer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    ap.add_argument("--check-slow", action="store_true", help="compare the fixtures with the slow tokenizer")
    args = ap.parse_args()
    if args.check_slow:
        check_slow(args.out)
    else:
        generate(args.out)


if __name__ == "__main__":
    main()
