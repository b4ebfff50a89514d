"""Parity of omniseg's CLI against Hugging Face transformers on a SAM model of a published shape.

Run:  .venv/bin/python models/sam/parity.py [--reference-only | --prepare-only] [--omniseg "node dist/lib/cli.js"] [--cpu-matmul bf16x3|fp32]
      [--device cpu|cuda|auto]
                                            [--threads N] [--cache DIR] [--shape sam-vit-base|sam-vit-large|sam-vit-huge|slimsam-77|slimsam-50]
(`npm run parity` wraps this; not part of CI; the 1024x1024 reference takes a few minutes.)

1. Builds (once) a randomly initialised model with facebook/sam-vit-base shapes (ViT-B/16, 1024x1024
   input, 64x64x256 embedding, global attention in layers 2,5,8,11, window 14 - the 64x64 grid is
   padded to 70x70 in windowed layers) with every parameter re-drawn like the tiny fixture
   (common.jitter_), saved with save_pretrained (safetensors) plus the processor configs
   (processor_config.json and preprocessor_config.json, longest edge 1024, mask 256) into
   <cache>/sam-vit-base/ (default .cache/parity/, git-ignored).  Delete that directory to rebuild.
2. Reference (transformers SamProcessor with the PIL image processor + SamModel, fp32, eval,
   torch 2 threads) for two images: astronaut.png resized to 1024x1024 (no resize inside the
   processor) and chelsea.png 451x300 as is (resized to 1024x681 + padding).  It writes the
   inputs and reference arrays to <cache>/run/ (pixel values, embeddings, logits, masks; raw
   float32/uint8, for debugging) and times the reference image encoder.
3. Unless --reference-only, runs omniseg's CLI on the same inputs:
     <omniseg> encode <image> --model <dir> --save-embedding <out.f32> [--threads N]
         -> float32 [256,64,64]
     <omniseg> segment <image> --model <dir> --point x,y,1 [--point ...] [--box x0,y0,x1,y1]
               [--multimask] --json --save-logits <out.f32> [--threads N]
         -> stdout JSON {"width","height","masks":[{"score","box","area",
                          "rle":{"size":[H,W],"counts":"<COCO compressed RLE>"}}],"timings":{...}}
            (masks in the decoder's output order), float32 [numMasks,256,256] low-res logits.
   and prints, per image and case, the relative L2 error ||ours-ref||/||ref|| and max abs error of
   the embedding and the low-res logits, the max abs error of the scores and the fraction of
   mismatched pixels of the binary masks at image size.
--shape sam-vit-large / sam-vit-huge: the same with facebook/sam-vit-large's and -huge's vision shapes
(ViT-L: hidden 1024, 24 layers, 16 heads of 64, global attention in layers 5,11,17,23; ViT-H: hidden
1280, 32 layers, 16 heads of 80, global in 7,15,23,31), into <cache>/<shape>/ and <cache>/run-<shape>/.
--shape slimsam-77 / slimsam-50: the same with the SlimSAM uniform checkpoints' shapes (ViT-B pruned
to hidden 168 / 384, MLP 696 / 1536; 12 heads, so 14 / 32 per head), written with the published
config.json verbatim (only hidden_size and mlp_dim given: everything else is SamConfig's
defaults, which omniseg's config reader must apply the same way), into <cache>/<shape>/ and
<cache>/run-<shape>/.
Exit status 1 if any embedding or logits relative L2 > 1e-4, any mask mismatch > 0.1 %, or the
CLI fails / returns the wrong number or size of masks; 0 otherwise (always 0 with
--reference-only unless the reference itself fails).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SEED = 1234
EMB_REL_L2_MAX = 1e-4
LOGITS_REL_L2_MAX = 1e-4
MASK_MISMATCH_MAX = 1e-3  # fraction of pixels (0.1 %)
def _published_slimsam(hidden: int, mlp: int) -> dict:
    """config.json of nielsr/slimsam-{77,50}-uniform as published (huggingface.co, read 2026-11-23)."""
    return {
        "architectures": ["SamModel"], "initializer_range": 0.02, "mask_decoder_config": {"model_type": ""},
        "model_type": "sam", "prompt_encoder_config": {"model_type": ""}, "torch_dtype": "float32",
        "transformers_version": "4.37.0.dev0",
        "vision_config": {"hidden_size": hidden, "mlp_dim": mlp, "model_type": ""},
    }


# name -> (SamConfig, the config.json to write instead of save_pretrained's, or None)
SHAPES = {
    "sam-vit-base": lambda: (common.vit_config("sam-vit-base"), None),
    "sam-vit-large": lambda: (common.vit_config("sam-vit-large"), None),
    "sam-vit-huge": lambda: (common.vit_config("sam-vit-huge"), None),
    "slimsam-77": lambda: _slimsam(168, 696),
    "slimsam-50": lambda: _slimsam(384, 1536),
}


def _slimsam(hidden: int, mlp: int):
    from transformers import SamConfig

    published = _published_slimsam(hidden, mlp)
    cfg = SamConfig(vision_config=dict(published["vision_config"]))
    common.check_config(cfg)
    return cfg, published


def ensure_model(cache: Path, shape: str = "sam-vit-base") -> Path:
    model_dir = cache / shape
    stamp = model_dir / "omniseg-parity.json"
    needed = ["config.json", "model.safetensors", "preprocessor_config.json", "processor_config.json"]
    if stamp.is_file() and all((model_dir / f).is_file() for f in needed):
        meta = json.loads(stamp.read_text())
        if meta.get("seed") == SEED:
            print(f"model: reusing {model_dir} (seed {SEED})")
            return model_dir
    print(f"model: building random {shape} (seed {SEED}) into {model_dir} ...", flush=True)
    t0 = time.perf_counter()
    cfg, published = SHAPES[shape]()
    model = common.build_model(cfg, SEED)
    model_dir.mkdir(parents=True, exist_ok=True)
    if stamp.exists():
        stamp.unlink()
    model.save_pretrained(model_dir, safe_serialization=True)
    if published is not None:
        (model_dir / "config.json").write_text(json.dumps(published, indent=2) + "\n")
    common.save_processor(common.make_processor(1024, 256), model_dir)
    stamp.write_text(json.dumps({
        "seed": SEED,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "config": common.config_summary(cfg),
    }, indent=1) + "\n")
    print(f"model: built in {time.perf_counter() - t0:.1f} s")
    return model_dir


def prepare_images(run_dir: Path) -> list[dict]:
    run_dir.mkdir(parents=True, exist_ok=True)
    astro = Image.open(common.SHARED_IMAGES / "astronaut.png").convert("RGB")
    astro = astro.resize((1024, 1024), Image.Resampling.BILINEAR)
    astro_path = run_dir / "astronaut1024.png"
    astro.save(astro_path, format="PNG")
    chelsea_path = run_dir / "chelsea.png"
    Image.open(common.SHARED_IMAGES / "chelsea.png").convert("RGB").save(chelsea_path, format="PNG")
    return [{"key": "astronaut1024", "path": astro_path}, {"key": "chelsea", "path": chelsea_path}]


def cases_for(width: int, height: int) -> list[dict]:
    """Three prompt cases in pixel coordinates of the original image (one prompt set each)."""
    def px(fx, fy):
        return [int(round(fx * width)), int(round(fy * height))]

    box = px(0.25, 0.2) + px(0.75, 0.85)
    return [
        {"name": "point_multi", "points": [px(0.48, 0.40)], "labels": [1], "box": None, "multimask": True},
        {"name": "box_single", "points": None, "labels": None, "box": box, "multimask": False},
        {"name": "box_point", "points": [px(0.5, 0.5)], "labels": [1], "box": box, "multimask": False},
    ]



def run_cli(cmd: list[str]) -> subprocess.CompletedProcess:
    print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, cwd=common.REPO_ROOT, capture_output=True, text=True)


def fmt(v, spec=".2e"):
    return "-" if v is None else format(v, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description="SAM parity: omniseg CLI vs transformers")
    common.add_cli_arguments(ap, "npm run bench")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="sam-vit-base",
                    help="model shape (default sam-vit-base; slimsam-* use the published config.json)")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    common._self_check_rle()
    cache: Path = args.cache.resolve()
    run_dir = cache / ("run" if args.shape == "sam-vit-base" else f"run-{args.shape}")

    prefix = shlex.split(args.omniseg)
    if not args.reference_only and prefix[:2] == ["node", "dist/lib/cli.js"] \
            and not (common.REPO_ROOT / "dist" / "lib" / "cli.js").is_file():
        print("error: dist/lib/cli.js not found - run `npm run build` first, pass --omniseg, "
              "or use --reference-only", file=sys.stderr)
        return 2

    model_dir = ensure_model(cache, args.shape)
    if args.prepare_only:
        prepare_images(run_dir)
        return 0

    # ---------------- reference ----------------
    from transformers import SamModel, SamProcessor

    torch.set_num_threads(2)
    model = SamModel.from_pretrained(model_dir).eval()
    processor = SamProcessor.from_pretrained(model_dir)
    print(f"reference: transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{type(processor.image_processor).__name__}, attn={model.config._attn_implementation}, "
          f"torch threads={torch.get_num_threads()}")

    images = prepare_images(run_dir)
    refs = []
    for img in images:
        image = Image.open(img["path"]).convert("RGB")
        enc = processor(images=image, return_tensors="pt")
        pv = enc["pixel_values"]
        t0 = time.perf_counter()
        with torch.no_grad():
            emb = model.get_image_embeddings(pv)
        enc_s = time.perf_counter() - t0
        resized = [int(v) for v in enc["reshaped_input_sizes"][0].tolist()]
        print(f"reference encoder {img['key']} ({image.width}x{image.height} -> {resized[1]}x{resized[0]}): "
              f"{enc_s:.2f} s (2 threads); embedding std {emb.std():.3f}", flush=True)
        key = img["key"]
        common.write_f32(run_dir / f"{key}.ref.pixel_values.f32", pv[0])
        common.write_f32(run_dir / f"{key}.ref.embedding.f32", emb[0])
        cases = []
        for case in cases_for(image.width, image.height):
            r = common.run_prompt(
                model, processor, image, emb,
                points=[case["points"]] if case["points"] else None,
                labels=[case["labels"]] if case["labels"] else None,
                boxes=[case["box"]] if case["box"] else None,
                multimask=case["multimask"],
            )
            base = f"{key}.{case['name']}"
            common.write_f32(run_dir / f"{base}.ref.lowres.f32", r["lowres"][0])
            common.write_f32(run_dir / f"{base}.ref.iou.f32", r["iou"][0])
            common.write_u8(run_dir / f"{base}.ref.masks.u8", r["masks"][0])
            pos = [round(float(m.mean()), 3) for m in r["masks"][0]]
            print(f"  {case['name']:11s} iou={np.round(r['iou'][0], 4).tolist()} positive={pos} "
                  f"logits[{r['lowres'].min():.2f},{r['lowres'].max():.2f}]")
            cases.append({**case, "ref": r})
        refs.append({**img, "width": image.width, "height": image.height, "resized": resized,
                     "embedding": emb[0].numpy(), "encode_s": enc_s, "cases": cases})
    (run_dir / "reference.json").write_text(json.dumps([{
        "image": str(r["path"].name), "width": r["width"], "height": r["height"], "resized": r["resized"],
        "encodeSeconds": round(r["encode_s"], 3),
        "cases": [{k: c[k] for k in ("name", "points", "labels", "box", "multimask")} for c in r["cases"]],
    } for r in refs], indent=1) + "\n")

    print(f"\nthresholds: embedding rel L2 <= {EMB_REL_L2_MAX:g}, logits rel L2 <= {LOGITS_REL_L2_MAX:g}, "
          f"mask mismatch <= {MASK_MISMATCH_MAX * 100:g} %")
    if args.reference_only:
        print(f"reference only: outputs in {run_dir}")
        return 0

    # ---------------- omniseg ----------------
    cli_opts = common.cli_options(args)
    rows = []
    failures = []
    for ref in refs:
        key = ref["key"]
        out_emb = run_dir / f"{key}.omniseg.embedding.f32"
        if out_emb.exists():
            out_emb.unlink()
        t0 = time.perf_counter()
        p = run_cli(prefix + ["encode", str(ref["path"]), "--model", str(model_dir),
                              "--save-embedding", str(out_emb)] + cli_opts)
        wall = time.perf_counter() - t0
        if p.returncode != 0 or not out_emb.is_file():
            failures.append(f"{key}: encode failed (rc {p.returncode}): {p.stderr.strip()[-2000:]}")
            rows.append((key, "encode", None, None, None, None, None, None, "CLI FAILED"))
            continue
        ours = common.read_f32(out_emb)
        if ours.size != ref["embedding"].size:
            failures.append(f"{key}: embedding has {ours.size} floats, expected {ref['embedding'].size}")
            rows.append((key, "encode", None, None, None, None, None, None, "BAD SIZE"))
            continue
        ours = ours.reshape(ref["embedding"].shape)
        e_rel, e_max = common.rel_l2(ours, ref["embedding"]), common.max_abs(ours, ref["embedding"])
        ok = e_rel <= EMB_REL_L2_MAX
        if not ok:
            failures.append(f"{key}: embedding rel L2 {e_rel:.3e} > {EMB_REL_L2_MAX:g}")
        rows.append((key, "encode", e_rel, e_max, None, None, None, None,
                     f"{'ok' if ok else 'FAIL'} ({wall:.1f} s wall, ref {ref['encode_s']:.1f} s)"))

        for case in ref["cases"]:
            r = case["ref"]
            M = r["lowres"].shape[1]
            L = r["lowres"].shape[-1]
            out_logits = run_dir / f"{key}.{case['name']}.omniseg.lowres.f32"
            if out_logits.exists():
                out_logits.unlink()
            cmd = prefix + ["segment", str(ref["path"]), "--model", str(model_dir)]
            for (x, y), lab in zip(case["points"] or [], case["labels"] or []):
                cmd += ["--point", f"{x},{y},{lab}"]
            if case["box"]:
                cmd += ["--box", ",".join(str(v) for v in case["box"])]
            if case["multimask"]:
                cmd += ["--multimask"]
            cmd += ["--json", "--save-logits", str(out_logits)] + cli_opts
            p = run_cli(cmd)
            problems = []
            res = None
            if p.returncode != 0:
                problems.append(f"rc {p.returncode}: {p.stderr.strip()[-2000:]}")
            else:
                try:
                    res = json.loads(p.stdout)
                except json.JSONDecodeError as e:
                    problems.append(f"stdout is not JSON ({e}): {p.stdout[:500]!r}")
            if res is None or problems:
                failures.append(f"{key}/{case['name']}: segment failed: {'; '.join(problems)}")
                rows.append((key, case["name"], None, None, None, None, None, None, "CLI FAILED"))
                continue
            if (res.get("width"), res.get("height")) != (ref["width"], ref["height"]):
                problems.append(f"width/height {res.get('width')}x{res.get('height')} != {ref['width']}x{ref['height']}")
            masks_json = res.get("masks") or []
            if len(masks_json) != M:
                problems.append(f"{len(masks_json)} masks, expected {M}")
            l_rel = l_max = s_err = mism = None
            if out_logits.is_file():
                lo = common.read_f32(out_logits)
                if lo.size != M * L * L:
                    problems.append(f"logits file has {lo.size} floats, expected {M}x{L}x{L}")
                else:
                    lo = lo.reshape(M, L, L)
                    l_rel, l_max = common.rel_l2(lo, r["lowres"][0]), common.max_abs(lo, r["lowres"][0])
                    if l_rel > LOGITS_REL_L2_MAX:
                        problems.append(f"logits rel L2 {l_rel:.3e} > {LOGITS_REL_L2_MAX:g}")
            else:
                problems.append("no logits file written")
            if len(masks_json) == M:
                scores = np.array([float(m["score"]) for m in masks_json], dtype=np.float64)
                s_err = float(np.max(np.abs(scores - r["iou"][0].astype(np.float64))))
                bad = 0
                total = 0
                for i, mj in enumerate(masks_json):
                    rle = mj.get("rle") or {}
                    try:
                        dec = common.rle_decode(rle)
                    except Exception as e:  # noqa: BLE001
                        problems.append(f"mask {i}: bad RLE ({e})")
                        continue
                    if dec.shape != r["masks"][0, i].shape:
                        problems.append(f"mask {i}: RLE size {list(dec.shape)} != {list(r['masks'][0, i].shape)}")
                        continue
                    if "area" in mj and int(mj["area"]) != int(dec.sum()):
                        problems.append(f"mask {i}: area {mj['area']} != decoded RLE area {int(dec.sum())}")
                    bad += int(np.count_nonzero(dec != r["masks"][0, i]))
                    total += dec.size
                if total:
                    mism = bad / total
                    if mism > MASK_MISMATCH_MAX:
                        problems.append(f"mask mismatch {mism * 100:.3f} % > {MASK_MISMATCH_MAX * 100:g} %")
            if problems:
                failures.append(f"{key}/{case['name']}: " + "; ".join(problems))
            t = res.get("timings") or {}
            tinfo = ", ".join(f"{k}={v}" for k, v in t.items()) if isinstance(t, dict) else ""
            rows.append((key, case["name"], None, None, l_rel, l_max, s_err, mism,
                         ("ok" if not problems else "FAIL") + (f" ({tinfo})" if tinfo else "")))

    print("\n%-14s %-12s %10s %10s %10s %10s %10s %9s  %s" % (
        "image", "case", "emb relL2", "emb max", "lgt relL2", "lgt max", "score err", "mask mis", "status"))
    for key, name, e_rel, e_max, l_rel, l_max, s_err, mism, status in rows:
        print("%-14s %-12s %10s %10s %10s %10s %10s %9s  %s" % (
            key, name, fmt(e_rel), fmt(e_max), fmt(l_rel), fmt(l_max), fmt(s_err),
            "-" if mism is None else f"{mism * 100:.3f}%", status))
    print(f"\nthresholds: embedding rel L2 <= {EMB_REL_L2_MAX:g}, logits rel L2 <= {LOGITS_REL_L2_MAX:g}, "
          f"mask mismatch <= {MASK_MISMATCH_MAX * 100:g} %")
    return common.verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
