"""Generate the tiny-CLIPSeg reference fixtures in test/fixtures/clipseg-tiny/ (committed, ~1.1 MB).

Run:  .venv/bin/python models/clipseg/generate_fixtures.py [--out DIR]
Deterministic: fixed seeds, one torch thread. Reference = Hugging Face transformers
CLIPSegForImageSegmentation (eager attention), fp32, eval.

Model (tiny_config below; the layout of CIDAS/clipseg-rd64-refined at small sizes): text tower
hidden 32, 2 layers, 2 heads, intermediate 64, vocabulary 64, 16 positions, eos_token_id 2 (as the
CIDAS config: pooled output at the argmax of the ids); vision tower hidden 32, 4 layers, 2 heads,
intermediate 64, patch 16 on a 64x64 configured input (4x4 position grid); quick_gelu in both;
projection 24; decoder reduce_dim 16, 2 heads, intermediate 32, extract_layers [0, 1, 2],
conditional_layer 0, complex transposed convolution (conv 3x3 + two ConvTranspose2d with kernel =
stride = patch/4 = 4). Every parameter is re-drawn from a seeded generator (jitter_): Linear/Conv
weights N(0, 1/fan_in), biases N(0, .1^2), LayerNorm weight 1+N(0, .1^2) and bias N(0, .1^2),
embedding tables and class_embedding N(0, 1), film_mul/film_add weights N(0, 4/fan_in) (so the
conditioning visibly changes the logits).

Inputs are fed directly, independent of any vocabulary or image processor:
  input ids    fixed int arrays (BOS 62, EOS 63 = the largest id, as in CLIP's vocabulary)
  pixel values float32 [3, S, S] drawn N(0, 1) from a seeded generator; S = 96 for the query image
               (6x6 patch grid: position embeddings are bicubic-interpolated from 4x4, as the real
               checkpoint interpolates 14x14 -> 22x22 at 352x352) and S = 64 (no interpolation)
               for the second query image; the visual prompt image is 80x80 (5x5 grid).

Directory layout (raw arrays little-endian float32, C order, no header):
  model/config.json, model/model.safetensors    save_pretrained(safe_serialization=True)
  <image>.pixels.f32       [3, S, S]  query / prompt images
  text.<name>.embedding.f32  [24]     get_text_features(ids).pooler_output (text_projection)
  prompt.embedding.f32     [24]       get_image_features(prompt).pooler_output (visual_projection)
  <case>.logits.f32        [S, S]     CLIPSegForImageSegmentation(...).logits[0]
                                      (S = grid * patch: the decoder's output size)

Preprocessing and tokenizer (the end-to-end cases of test/referrer.test.ts):
  model/preprocessor_config.json  ViTImageProcessorPil (the PIL backend, as CIDAS's config names
                           ViTImageProcessor): size 96x96 (6x6 grid, interpolated as the real
                           checkpoint at 352), bilinear (resample 2), rescale 1/255, ImageNet
                           mean/std as CIDAS/clipseg-rd64-refined.
  model/vocab.json, model/merges.txt  a 64-id CLIP-style vocabulary written here (TINY_VOCAB:
                           a-z with and without </w>, a few merged words, <|startoftext|> 62,
                           <|endoftext|> 63 = unk/pad), so that text goes through the tokenizer.
  <name>.pixel_values.f32  [3, 96, 96] the processor's pixel_values of test/fixtures/sam-tiny/<name>.png
  e2e_<case>.logits.f32    [96, 96] logits of wide.png conditioned on a text through CLIPTokenizer
                           (text case) or on small.png as the visual prompt (prompt case)

cases.json:
  {"config": {...summary, seed, transformers, torch}, "model": "model",
   "images": [{"name", "file", "size"}],
   "texts": [{"name", "ids": [int], "embedding": file}],
   "prompt": {"image": name, "embedding": file},
   "cases": [{"name", "image", "text": name | null, "prompt": bool, "textWeight": number | null,
              "logits": file, "size": S}],
   "processor": {"size": 96, "images": [{"name", "source", "width", "height", "pixelValues"}]},
   "tokens": [{"text", "ids"}],     CLIPTokenizer on the tiny vocabulary
   "e2e": [{"name", "image", "text": str | null, "refImage": name | null, "logits", "size"}],
   "labels": {"logitScale", "image": "prompt", "classes": [str],
              "zeroShot": {"template", "logitsPerImage": [float], "probs": [float]},
              "ensemble": {"templates": [str], "logits": [float], "probs": [float]}}}
  labels: CLIP zero-shot scores of the prompt image's features against the classes, by
  CLIPSegModel.forward's logits_per_image (first template only) and with prompt ensembling.
  A case conditions on the text (text set, prompt false), on the visual prompt (text null, prompt
  true), or on textWeight * text + (1 - textWeight) * prompt (both), the weighted mix passed as
  conditional_embeddings.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 20240604

TEXTS = {
    # BOS, a few words, EOS (largest id): the pooled output is read at the argmax (index 4).
    "cat": [62, 10, 11, 12, 63],
    "dog": [62, 20, 5, 63],
    # Padding after EOS (pad id 1): causal attention keeps it from changing the pooled token.
    "padded": [62, 30, 31, 32, 33, 34, 63, 1, 1, 1],
}


# The tiny vocabulary: id -> token. CLIP's layout in miniature: single characters, the same with
# the end-of-word marker, merged tokens, then the special tokens at the end.
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("t", "h"), ("th", "e</w>"),
           ("r", "e"), ("re", "d</w>")]
TINY_VOCAB = ([*_LETTERS] + [f"{c}</w>" for c in _LETTERS] + [a + b for a, b in _MERGES]
              + [".", ".</w>", "<|startoftext|>", "<|endoftext|>"])
TOKEN_TEXTS = ["a red cat", "The dog.", "the CAT, the dog!", "zebra", "  red\tred  "]
# Vocabulary and prompt templates of the label fixtures (words of the tiny vocabulary).
LABEL_CLASSES = ["cat", "dog", "red thing", "zebra"]
LABEL_TEMPLATES = ["a {}.", "the {}.", "art of a {}"]
PROCESSOR_SIZE = 96
SAM_IMAGES = REPO_ROOT / "test" / "fixtures" / "sam-tiny"


def write_tokenizer(model_dir: Path) -> None:
    assert len(TINY_VOCAB) == 64 and TINY_VOCAB[62] == "<|startoftext|>"
    (model_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(TINY_VOCAB)}, indent=0) + "\n")
    (model_dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in _MERGES))


def write_processor(model_dir: Path):
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    proc = ViTImageProcessorPil(
        size={"height": PROCESSOR_SIZE, "width": PROCESSOR_SIZE}, resample=2, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True, image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    proc.save_pretrained(model_dir)
    return proc


def tiny_config():
    from transformers import CLIPSegConfig

    return CLIPSegConfig(
        text_config=dict(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=16, hidden_act="quick_gelu",
            bos_token_id=62, eos_token_id=2, pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
            image_size=64, patch_size=16, hidden_act="quick_gelu",
        ),
        projection_dim=24,
        extract_layers=[0, 1, 2],
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
        conditional_layer=0,
        use_complex_transposed_convolution=True,
        attn_implementation="eager",
    )


@torch.no_grad()
def jitter_(model: nn.Module, seed: int) -> None:
    """Re-draw every parameter (see the module docstring) so that no path is zero or identity."""
    gen = torch.Generator().manual_seed(seed)
    touched: set[int] = set()

    def draw(p, std, mean=0.0):
        if id(p) in touched:
            return
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std + mean)
        touched.add(id(p))

    from transformers.models.clipseg.modeling_clipseg import CLIPSegModel, CLIPSegVisionEmbeddings

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            gain = 2.0 if name.endswith(("film_mul", "film_add")) else 1.0
            draw(mod.weight, gain / math.sqrt(mod.in_features))
            if mod.bias is not None:
                draw(mod.bias, 0.1)
        elif isinstance(mod, nn.ConvTranspose2d):
            draw(mod.weight, 1.0 / math.sqrt(mod.in_channels))
            draw(mod.bias, 0.1)
        elif isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            draw(mod.weight, 1.0 / math.sqrt(mod.in_channels * kh * kw))
            if mod.bias is not None:
                draw(mod.bias, 0.1)
        elif isinstance(mod, nn.LayerNorm):
            draw(mod.weight, 0.1, 1.0)
            draw(mod.bias, 0.1)
        elif isinstance(mod, nn.Embedding):
            draw(mod.weight, 1.0)
        elif isinstance(mod, CLIPSegVisionEmbeddings):
            draw(mod.class_embedding, 1.0)
        elif isinstance(mod, CLIPSegModel):
            draw(mod.logit_scale, 0.0, 2.6592)
    missing = [n for n, p in model.named_parameters(remove_duplicate=False) if id(p) not in touched]
    if missing:
        raise RuntimeError(f"jitter_ left parameters untouched: {missing}")


def write_f32(path: Path, arr) -> None:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    if not np.all(np.isfinite(a)):
        raise ValueError(f"non-finite values for {path}")
    path.write_bytes(a.tobytes(order="C"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO_ROOT / "test" / "fixtures" / "clipseg-tiny"))
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(1)
    import transformers
    from transformers import CLIPSegForImageSegmentation

    from PIL import Image
    from transformers import CLIPTokenizer

    cfg = tiny_config()
    torch.manual_seed(SEED)
    model = CLIPSegForImageSegmentation(cfg)
    jitter_(model, SEED)
    model.eval()

    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    model.save_pretrained(out / "model", safe_serialization=True)
    # Reload what was saved, so the reference is exactly the committed checkpoint.
    model = CLIPSegForImageSegmentation.from_pretrained(out / "model", attn_implementation="eager").eval()
    write_tokenizer(out / "model")
    proc = write_processor(out / "model")
    tok = CLIPTokenizer.from_pretrained(out / "model")

    gen = torch.Generator().manual_seed(SEED + 1)
    images = {"query": 96, "square": 64, "prompt": 80}
    pixels = {}
    manifest_images = []
    for name, s in images.items():
        px = torch.randn((1, 3, s, s), generator=gen, dtype=torch.float32)
        pixels[name] = px
        write_f32(out / f"{name}.pixels.f32", px[0])
        manifest_images.append({"name": name, "file": f"{name}.pixels.f32", "size": s})

    text_emb = {}
    manifest_texts = []
    with torch.no_grad():
        for name, ids in TEXTS.items():
            e = model.clip.get_text_features(torch.tensor([ids])).pooler_output[0]
            text_emb[name] = e
            write_f32(out / f"text.{name}.embedding.f32", e)
            manifest_texts.append({"name": name, "ids": ids, "embedding": f"text.{name}.embedding.f32"})
        prompt_emb = model.clip.get_image_features(pixels["prompt"]).pooler_output[0]
        write_f32(out / "prompt.embedding.f32", prompt_emb)

        # Cross-check: the decoder's own conditional path equals the features written above.
        ref = model(pixel_values=pixels["square"], input_ids=torch.tensor([TEXTS["cat"]]))
        if not torch.allclose(ref.conditional_embeddings[0], text_emb["cat"]):
            raise RuntimeError("text conditional embedding differs from get_text_features")
        ref = model(pixel_values=pixels["square"], conditional_pixel_values=pixels["prompt"])
        if not torch.allclose(ref.conditional_embeddings[0], prompt_emb):
            raise RuntimeError("visual conditional embedding differs from get_image_features")

        cases = []

        def case(name, image, text=None, prompt=False, weight=None):
            kw = {"pixel_values": pixels[image]}
            if text is not None and prompt:
                kw["conditional_embeddings"] = (weight * text_emb[text] + (1 - weight) * prompt_emb)[None]
            elif text is not None:
                kw["input_ids"] = torch.tensor([TEXTS[text]])
            else:
                kw["conditional_pixel_values"] = pixels["prompt"]
            logits = model(**kw).logits[0]
            write_f32(out / f"{name}.logits.f32", logits)
            cases.append({"name": name, "image": image, "text": text, "prompt": prompt,
                          "textWeight": weight, "logits": f"{name}.logits.f32", "size": logits.shape[-1]})
            return logits

        a = case("query_cat", "query", text="cat")
        b = case("query_dog", "query", text="dog")
        case("query_padded", "query", text="padded")
        case("square_cat", "square", text="cat")
        case("query_prompt", "query", prompt=True)
        case("query_mix", "query", text="cat", prompt=True, weight=0.3)
        diff = (a - b).norm() / a.norm()

        # End to end: the processor's pixel values and the tokenizer's ids, as a user runs it.
        tokens = [{"text": t, "ids": tok(t)["input_ids"]} for t in TOKEN_TEXTS]
        proc_images, pv = [], {}
        for name in ("wide", "small"):
            im = Image.open(SAM_IMAGES / f"{name}.png").convert("RGB")
            pv[name] = proc(images=im, return_tensors="pt")["pixel_values"]
            write_f32(out / f"{name}.pixel_values.f32", pv[name][0])
            proc_images.append({"name": name, "source": f"../sam-tiny/{name}.png", "width": im.width,
                                "height": im.height, "pixelValues": f"{name}.pixel_values.f32"})
        e2e = []
        for name, text, ref in (("text", "a red cat", None), ("prompt", None, "small")):
            kw = {"pixel_values": pv["wide"]}
            if text is not None:
                kw["input_ids"] = torch.tensor([tok(text)["input_ids"]])
            else:
                kw["conditional_pixel_values"] = pv[ref]
            logits = model(**kw).logits[0]
            write_f32(out / f"e2e_{name}.logits.f32", logits)
            e2e.append({"name": name, "image": "wide", "text": text, "refImage": ref,
                        "logits": f"e2e_{name}.logits.f32", "size": logits.shape[-1]})
        if diff < 0.05:
            raise RuntimeError(f"the text barely changes the logits (rel diff {diff:.3g})")

        # Segment labels (issue #4 item 6): CLIP zero-shot classification of the visual prompt
        # image (prompt.pixels.f32) against a vocabulary, (a) by the reference's own similarity
        # head, CLIPSegModel.forward's logits_per_image (one text per class, padded batch), and
        # (b) with prompt ensembling as in CLIP's ImageNet notebook: per class, the mean of the
        # L2-normalised text features of every template, normalised again.
        scale = model.clip.logit_scale.exp().item()
        texts = [t.format(c) for c in LABEL_CLASSES for t in LABEL_TEMPLATES[:1]]
        batch = tok(texts, padding=True, return_tensors="pt")
        zs = model.clip(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        pixel_values=pixels["prompt"], interpolate_pos_encoding=True)
        zs_logits = zs.logits_per_image[0]
        img = prompt_emb / prompt_emb.norm()
        cls = []
        for c in LABEL_CLASSES:
            feats = [model.clip.get_text_features(torch.tensor([tok(t.format(c))["input_ids"]])).pooler_output[0]
                     for t in LABEL_TEMPLATES]
            m = torch.stack([f / f.norm() for f in feats]).mean(0)
            cls.append(m / m.norm())
        ens_logits = scale * (torch.stack(cls) @ img)
        labels = {
            "logitScale": scale, "image": "prompt", "classes": LABEL_CLASSES,
            "zeroShot": {"template": LABEL_TEMPLATES[0], "logitsPerImage": zs_logits.tolist(),
                         "probs": zs_logits.softmax(-1).tolist()},
            "ensemble": {"templates": LABEL_TEMPLATES, "logits": ens_logits.tolist(),
                         "probs": ens_logits.softmax(-1).tolist()},
        }

    v, t = cfg.vision_config, cfg.text_config
    summary = {
        "projectionDim": cfg.projection_dim, "reduceDim": cfg.reduce_dim,
        "extractLayers": list(cfg.extract_layers), "conditionalLayer": cfg.conditional_layer,
        "visionHiddenSize": v.hidden_size, "visionLayers": v.num_hidden_layers,
        "imageSize": v.image_size, "patchSize": v.patch_size,
        "textHiddenSize": t.hidden_size, "textLayers": t.num_hidden_layers,
        "maxPositions": t.max_position_embeddings, "vocabSize": t.vocab_size,
        "textRelDiffCatDog": float(diff),
        "seed": SEED, "transformers": transformers.__version__, "torch": torch.__version__,
    }
    manifest = {"config": summary, "model": "model", "images": manifest_images, "texts": manifest_texts,
                "prompt": {"image": "prompt", "embedding": "prompt.embedding.f32"}, "cases": cases,
                "processor": {"size": PROCESSOR_SIZE, "images": proc_images}, "tokens": tokens, "e2e": e2e,
                "labels": labels}
    (out / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1024:.0f} KiB); cat/dog logits rel diff {diff:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
