"""Parity of omniseg's CLI against Hugging Face transformers on a CIDAS/clipseg-rd64-refined-shaped model.

Run:  .venv/bin/python models/clipseg/parity.py [--reference-only | --prepare-only] [--omniseg "node dist/lib/cli.js"] [--cpu-matmul bf16x3|fp32]
      [--device cpu|cuda|auto]
                                                [--threads N] [--cache DIR]
(`npm run parity` runs it after the SAM parity; not part of CI; about a minute.)

1. Builds (once) a randomly initialised CLIPSegForImageSegmentation with the full configuration of
   CIDAS/clipseg-rd64-refined (FULL_CONFIG below), every parameter re-drawn by
   generate_fixtures.jitter_ (the tiny fixture's scheme), saved with save_pretrained (safetensors)
   into <cache>/clipseg-rd64-refined/ (default .cache/parity/, git-ignored) with CIDAS's
   preprocessor_config.json (PREPROCESSOR) and the real CLIP tokenizer (vocab.json + merges.txt
   from ../shared/clip-tokenizer/).  Delete that directory to rebuild.
2. Reference: transformers CLIPSegForImageSegmentation (fp32, eval, eager attention, torch 2
   threads) on the pixel values of ViTImageProcessorPil read from that preprocessor_config.json
   and the ids of CLIPTokenizer read from that directory.  Query images: astronaut.png resized to
   352x352 beforehand (the processor's resize is then the identity) and chelsea.png 451x300 as is
   (resized by the processor); the visual prompt is chelsea.png, whole.  Inputs and reference
   logits go to <cache>/clipseg-run/ (raw float32, for debugging).
3. Unless --reference-only, runs omniseg's CLI on the same inputs, one process per case:
     <omniseg> heatmap <image> --model <dir> [--text T] [--ref-image F] [--text-weight W]
               --save <logits.f32> --json [--threads N]
         -> float32 [352, 352] raw logits; stdout JSON {"width","height","size",...}
   and prints the relative L2 error ||ours-ref||/||ref|| and the max abs error of the logits per
   case, and of the difference of the two texts' logits on the same image (at random weights the
   image path dominates the logits, so a broken text path could still pass the plain cases).
Exit status 1 if any relative L2 > REL_L2_MAX or the CLI fails / writes the wrong size; 0 otherwise
(always 0 with --reference-only unless the reference itself fails).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    """Imports a sibling script by path (models/sam and models/clipseg both have generate_fixtures.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load("sam_common", HERE.parent / "sam" / "common.py")  # REPO_ROOT, SHARED_IMAGES, raw f32 I/O
jitter_ = _load("clipseg_fixtures", HERE / "generate_fixtures.py").jitter_

SEED = 4242
REL_L2_MAX = 1e-4
MODEL_NAME = "clipseg-rd64-refined"
TOKENIZER_DIR = common.SHARED / "clip-tokenizer"
SIZE = 352

# CIDAS/clipseg-rd64-refined config.json (huggingface.co/CIDAS/clipseg-rd64-refined; its published
# config lists extract_layers [3,6,9], reduce_dim 64, decoder heads 4 / intermediate 2048 /
# quick_gelu, conditional_layer 0, projection_dim 512, use_complex_transposed_convolution true,
# text bos 0 / eos 2 (so the pooled token is the argmax id), vision patch_size 16, the rest
# CLIPSegTextConfig / CLIPSegVisionConfig defaults, written out here: CLIP ViT-B/16 at 224 and the
# 512-wide, 12-layer, 8-head text tower of CLIP over 77 positions and 49408 ids).
FULL_CONFIG = dict(
    text_config=dict(
        vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        bos_token_id=0, eos_token_id=2, pad_token_id=1,
    ),
    vision_config=dict(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        image_size=224, patch_size=16, num_channels=3, hidden_act="quick_gelu", layer_norm_eps=1e-5,
    ),
    projection_dim=512,
    logit_scale_init_value=2.6592,
    extract_layers=[3, 6, 9],
    reduce_dim=64,
    decoder_num_attention_heads=4,
    decoder_intermediate_size=2048,
    decoder_hidden_act="quick_gelu",
    conditional_layer=0,
    use_complex_transposed_convolution=True,
)

# CIDAS/clipseg-rd64-refined preprocessor_config.json as published since its "Update
# preprocessor_config.json" commit (ImageNet mean/std; the first upload had 0.5/0.5).
PREPROCESSOR = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "feature_extractor_type": "ViTImageProcessor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "processor_class": "CLIPSegProcessor",
    "resample": 2,
    "rescale_factor": 1 / 255,
    "size": {"height": SIZE, "width": SIZE},
}

TEXT_A = "an astronaut in a white space suit"
TEXT_B = "a flag on the wall"
TEXT_CAT = "a cat"
TEXT_WEIGHT = 0.3


def ensure_model(cache: Path, tokenizer_dir: Path = TOKENIZER_DIR) -> Path:
    model_dir = cache / MODEL_NAME
    stamp = model_dir / "omniseg-parity.json"
    needed = ["config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt"]
    if stamp.is_file() and all((model_dir / f).is_file() for f in needed):
        if json.loads(stamp.read_text()).get("seed") == SEED:
            print(f"model: reusing {model_dir} (seed {SEED})")
            return model_dir
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    print(f"model: building random {MODEL_NAME} (seed {SEED}) into {model_dir} ...", flush=True)
    t0 = time.perf_counter()
    cfg = CLIPSegConfig(**FULL_CONFIG)
    torch.manual_seed(SEED)
    model = CLIPSegForImageSegmentation(cfg)
    jitter_(model, SEED)
    model_dir.mkdir(parents=True, exist_ok=True)
    if stamp.exists():
        stamp.unlink()
    model.eval().save_pretrained(model_dir, safe_serialization=True)
    (model_dir / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2) + "\n")
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(tokenizer_dir / name, model_dir / name)
    params = sum(p.numel() for p in model.parameters())
    stamp.write_text(json.dumps({
        "seed": SEED, "parameters": params,
        "transformers": __import__("transformers").__version__, "torch": torch.__version__,
    }, indent=1) + "\n")
    print(f"model: {params / 1e6:.1f} M parameters, built in {time.perf_counter() - t0:.1f} s")
    return model_dir


def prepare_images(run_dir: Path) -> dict[str, Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    astro = Image.open(common.SHARED_IMAGES / "astronaut.png").convert("RGB")
    paths = {"astronaut352": run_dir / "astronaut352.png", "chelsea": run_dir / "chelsea.png"}
    astro.resize((SIZE, SIZE), Image.Resampling.BILINEAR).save(paths["astronaut352"], format="PNG")
    Image.open(common.SHARED_IMAGES / "chelsea.png").convert("RGB").save(paths["chelsea"], format="PNG")
    return paths


# name, query image, text, reference image, text weight
CASES = [
    ("astro_text_a", "astronaut352", TEXT_A, None, None),
    ("astro_text_b", "astronaut352", TEXT_B, None, None),
    ("astro_visual", "astronaut352", None, "chelsea", None),
    ("astro_mix", "astronaut352", TEXT_A, "chelsea", TEXT_WEIGHT),
    ("chelsea_text", "chelsea", TEXT_CAT, None, None),
]
DIFF = ("astro_text_a-b", "astro_text_a", "astro_text_b")



def case_inputs(model, pixel_values, ids, ref_pixels, weight) -> dict:
    """CLIPSegForImageSegmentation keyword arguments of one case: text ids, a reference image, or
    both mixed as weight·text + (1 − weight)·visual conditional embeddings."""
    kw = {"pixel_values": pixel_values}
    if ids is not None and ref_pixels is not None:
        t = model.clip.get_text_features(ids).pooler_output
        v = model.clip.get_image_features(ref_pixels).pooler_output
        kw["conditional_embeddings"] = weight * t + (1 - weight) * v
    elif ids is not None:
        kw["input_ids"] = ids
    else:
        kw["conditional_pixel_values"] = ref_pixels
    return kw


@torch.no_grad()
def reference(model_dir: Path, images: dict[str, Path], run_dir: Path) -> dict[str, np.ndarray]:
    from transformers import CLIPSegForImageSegmentation, CLIPTokenizer
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    torch.set_num_threads(2)
    model = CLIPSegForImageSegmentation.from_pretrained(model_dir, attn_implementation="eager").eval()
    proc = ViTImageProcessorPil.from_pretrained(model_dir)
    tok = CLIPTokenizer.from_pretrained(model_dir)
    print(f"reference: transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{type(proc).__name__} {proc.size}, {type(tok).__name__}, attn=eager, threads={torch.get_num_threads()}")
    pixels = {}
    for key, path in images.items():
        pixels[key] = proc(images=Image.open(path).convert("RGB"), return_tensors="pt")["pixel_values"]
        common.write_f32(run_dir / f"{key}.ref.pixel_values.f32", pixels[key][0])
    out = {}
    for name, image, text, ref_image, weight in CASES:
        ids = None if text is None else torch.tensor([tok(text)["input_ids"]])
        kw = case_inputs(model, pixels[image], ids, None if ref_image is None else pixels[ref_image], weight)
        t0 = time.perf_counter()
        logits = model(**kw).logits[0].numpy()
        ms = (time.perf_counter() - t0) * 1e3
        common.write_f32(run_dir / f"{name}.ref.logits.f32", logits)
        out[name] = logits
        idtxt = "" if ids is None else f" ids={ids[0].tolist()}"
        print(f"  {name:14s} logits [{logits.min():.2f}, {logits.max():.2f}] std {logits.std():.3f} "
              f"({ms:.0f} ms){idtxt}")
    _, a, b = DIFF
    print(f"  text effect: ||ref[{a}] - ref[{b}]|| / ||ref[{a}]|| = {common.rel_l2(out[b], out[a]):.3e}")
    return out


def run_case(prefix: list[str], model_dir: Path, images: dict[str, Path], case, out_file: Path,
             cli_opts: list[str]) -> tuple[np.ndarray | None, str]:
    name, image, text, ref_image, weight = case
    cmd = prefix + ["heatmap", str(images[image]), "--model", str(model_dir)]
    if text is not None:
        cmd += ["--text", text]
    if ref_image is not None:
        cmd += ["--ref-image", str(images[ref_image])]
    if weight is not None:
        cmd += ["--text-weight", str(weight)]
    cmd += ["--save", str(out_file), "--json"] + cli_opts
    if out_file.exists():
        out_file.unlink()
    print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    p = subprocess.run(cmd, cwd=common.REPO_ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"rc {p.returncode}: {p.stderr.strip()[-2000:]}"
    try:
        res = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        return None, f"stdout is not JSON ({e}): {p.stdout[:500]!r}"
    with Image.open(images[image]) as im:
        if (res.get("width"), res.get("height"), res.get("size")) != (im.width, im.height, SIZE):
            return None, f"width/height/size {res.get('width')}x{res.get('height')}/{res.get('size')}"
    if not out_file.is_file():
        return None, "no logits file written"
    logits = common.read_f32(out_file)
    if logits.size != SIZE * SIZE:
        return None, f"logits file has {logits.size} floats, expected {SIZE}x{SIZE}"
    t = res.get("timings") or {}
    return logits.reshape(SIZE, SIZE), f"model {t.get('modelMs', 0):.0f} ms, total {t.get('totalMs', 0):.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description="CLIPSeg parity: omniseg CLI vs transformers")
    common.add_cli_arguments(ap, "npm run bench:clipseg")
    args = ap.parse_args()

    cache: Path = args.cache.resolve()
    run_dir = cache / "clipseg-run"
    prefix = shlex.split(args.omniseg)
    if not (args.reference_only or args.prepare_only) and prefix[:2] == ["node", "dist/lib/cli.js"] \
            and not (common.REPO_ROOT / "dist" / "lib" / "cli.js").is_file():
        print("error: dist/lib/cli.js not found - run `npm run build:ts` first, pass --omniseg, "
              "or use --reference-only", file=sys.stderr)
        return 2
    model_dir = ensure_model(cache)
    images = prepare_images(run_dir)
    if args.prepare_only:
        return 0
    refs = reference(model_dir, images, run_dir)
    print(f"\nthreshold: logits rel L2 <= {REL_L2_MAX:g}")
    if args.reference_only:
        print(f"reference only: outputs in {run_dir}")
        return 0

    cli_opts = common.cli_options(args)
    ours: dict[str, np.ndarray] = {}
    rows, failures = [], []
    for case in CASES:
        name = case[0]
        logits, info = run_case(prefix, model_dir, images, case, run_dir / f"{name}.omniseg.logits.f32", cli_opts)
        if logits is None:
            failures.append(f"{name}: heatmap failed: {info}")
            rows.append((name, None, None, "CLI FAILED"))
            continue
        ours[name] = logits
        rows.append((name, common.rel_l2(logits, refs[name]), common.max_abs(logits, refs[name]), info))
    name, a, b = DIFF
    if a in ours and b in ours:
        ref_diff = refs[a] - refs[b]
        our_diff = ours[a].astype(np.float64) - ours[b].astype(np.float64)
        rows.append((name, common.rel_l2(our_diff, ref_diff), common.max_abs(our_diff, ref_diff),
                     f"||ref diff|| / ||ref {a}|| = {common.rel_l2(refs[b], refs[a]):.3f}"))
    else:
        failures.append(f"{name}: needs both {a} and {b}")

    print("\n%-16s %11s %11s  %s" % ("case", "rel L2", "max abs", "status"))
    for name, rel, mx, info in rows:
        ok = rel is not None and rel <= REL_L2_MAX
        if rel is not None and not ok:
            failures.append(f"{name}: logits rel L2 {rel:.3e} > {REL_L2_MAX:g}")
        status = info if rel is None else ("ok " if ok else "FAIL ") + info
        print("%-16s %11s %11s  %s" % (name, "-" if rel is None else f"{rel:.3e}",
                                       "-" if mx is None else f"{mx:.3e}", status))
    print(f"\nthreshold: logits rel L2 <= {REL_L2_MAX:g}")
    return common.verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
