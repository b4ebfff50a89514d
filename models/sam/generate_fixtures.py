"""Generate the tiny-SAM reference fixtures in test/fixtures/sam-tiny/ (committed, ~1.8 MB).

Run:  .venv/bin/python models/sam/generate_fixtures.py [--out DIR]
Deterministic: fixed seeds, one torch thread, images derived from ../shared/images with PIL.
Reference = Hugging Face transformers SamProcessor (PIL image processor) + SamModel, fp32, eval.

Model (SamConfig, see common.tiny_config): vision ViT hidden 48, 3 layers, 3 heads, mlp 96,
patch 8 on a 128x128 input -> 16x16 grid, window_size 5 (grid padded 16 -> 20 in windowed
layers 0 and 2), global attention in layer 1, neck -> 32 channels; prompt encoder hidden 32,
mask_input_channels 16; mask decoder hidden 32, 2 heads, mlp 64, 2 two-way layers, IoU head
hidden 32 (depth 3), 3 multimask outputs.  Low-res masks are 64x64.  Every parameter is re-drawn
from a seeded generator (common.jitter_): Linear/Conv weights N(0, 1/fan_in) (x4 for the mask
hypernetwork output layers, so logits are a few units), biases N(0, .1^2),
LayerNorm weight 1+N(0, .1^2) and bias N(0, .1^2), embeddings N(0, 1), the positional-encoding
Gaussian matrix N(0, 1), rel_pos_h/w N(0, .25^2), abs pos_embed N(0, .5^2).

Directory layout (all raw arrays are little-endian, C order, no header):
  model/config.json, model/model.safetensors      SamModel.save_pretrained(safe_serialization=True)
  model/processor_config.json                      SamProcessor.save_pretrained (transformers 5 nests
                                                  the image processor under "image_processor")
  model/preprocessor_config.json                  image_processor.save_pretrained (flat, the layout
                                                  of the facebook/sam-vit-* checkpoints): size
                                                  {"longest_edge":128}, pad_size 128x128,
                                                  mask_size {"longest_edge":64}, mask_pad_size 64x64
  wide.png        chelsea.png resized with PIL (BILINEAR) to 150x100 -> processor resizes DOWN to
                  128x85 (reshaped_input_sizes [85,128])
  small.png       90x70 crop of astronaut.png (box 190,60,280,130) -> processor resizes UP to
                  128x100 (reshaped_input_sizes [100,128])
  <img>.pixel_values.f32   float32 [3,128,128]  processor output (resize, /255, ImageNet
                           mean/std normalise, zero-pad bottom/right)
  <img>.embedding.f32      float32 [32,16,16]   model.get_image_embeddings(pixel_values)[0]
  <img>.<case>.lowres.f32  float32 [P,M,64,64]  outputs.pred_masks[0] (low-res logits)
  <img>.<case>.iou.f32     float32 [P,M]        outputs.iou_scores[0]
  <img>.<case>.masks.u8    uint8   [P,M,H,W]    post_process_masks(...)[0] binarised at logit > 0,
                                                H,W = original image height,width; values 0/1
  <img>.<case>.maskinput.f32 float32 [64,64]    dense mask prompt (mask-input cases only)
  P = number of prompt sets (point_batch_size), M = 3 if multimask else 1.

cases.json:
  {
    "config": {imageSize, patchSize, embeddingSize, embeddingDim, lowResSize, visionHiddenSize,
               visionLayers, visionHeads, visionMlpDim, windowSize, paddedWindowGrid,
               globalAttnIndexes, numPosFeats, maskInputChannels, decoderHiddenSize, decoderHeads,
               decoderMlpDim, decoderLayers, iouHeadHiddenDim, iouHeadDepth,
               numMultimaskOutputs, layerNormEps, seed, transformers, torch},
    "model": "model",                               (directory, relative to cases.json)
    "images": [{"file": "wide.png", "width": 150, "height": 100,
                "resized": [h, w],                  (reshaped_input_sizes: before padding)
                "pixelValues": "wide.pixel_values.f32", "embedding": "wide.embedding.f32"}, ...],
    "cases": [{"name": str, "image": "wide.png",
               "points": [[[x, y], ...], ...] | null,   ([P][N][2], pixels of the ORIGINAL image)
               "labels": [[l, ...], ...] | null,        ([P][N], 1 positive / 0 negative)
               "boxes": [[x0, y0, x1, y1], ...] | null, ([P][4], one per prompt set, pixels)
               "maskInput": "file" | null,              ([64,64] float32 logits, shared by all P)
               "multimask": bool,
               "lowres": "file", "iou": "file", "masks": "file",
               "shape": {"P": int, "M": int, "H": int, "W": int},
               "modelPoints": [[[x, y], ...], ...] | null,  (what the processor hands the model:
               "modelBoxes": [[x0, y0, x1, y1], ...] | null  coordinates in the resized frame,
                                                              computed in float64, before +0.5)
               "positiveFraction": [[f, ...], ...],    ([P][M] fraction of mask pixels set)
               "nearThreshold": [[n, ...], ...]}]      ([P][M] pixels whose upsampled logit is within
                                                        1e-3 of 0: a port may flip these)
  }

Reference behaviour a port must replicate (transformers 5.x):
  * Coordinates are scaled by (resized_w/orig_w, resized_h/orig_h) in float64; the prompt encoder
    adds 0.5, divides by image_size (128 here, 1024 for real SAM), maps to [-1,1], and only then
    casts to float32 before the matmul with the Gaussian matrix.
  * With points and NO boxes, one padding point (coords 0,0, label -1 -> not_a_point_embed) is
    appended to every prompt set; with boxes present no padding point is added and the sparse
    tokens are [points..., box corner 0, box corner 1] (points first).
  * Label -10 tokens are zeroed (processor padding across images; not produced by these cases).
  * With no points and no boxes (mask-only case) there are no sparse tokens at all.
  * Mask prompt: [1,1,64,64] logits through the mask-embedding convs; without it no_mask_embed is
    broadcast.  post_process_masks: bilinear (align_corners=False) 64 -> 128 (pad size), crop to
    reshaped_input_sizes, bilinear to the original size, then > 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SEED = 20240607
OUT_DEFAULT = common.REPO_ROOT / "test" / "fixtures" / "sam-tiny"


def make_images(out: Path) -> dict[str, Path]:
    chelsea = Image.open(common.SHARED_IMAGES / "chelsea.png").convert("RGB")
    wide = chelsea.resize((150, 100), Image.Resampling.BILINEAR)
    astronaut = Image.open(common.SHARED_IMAGES / "astronaut.png").convert("RGB")
    small = astronaut.crop((190, 60, 280, 130))  # 90x70
    assert wide.size == (150, 100) and small.size == (90, 70)
    paths = {"wide": out / "wide.png", "small": out / "small.png"}
    wide.save(paths["wide"], format="PNG", optimize=False)
    small.save(paths["small"], format="PNG", optimize=False)
    return paths


# Prompt cases: (name, image, spec). Coordinates in pixels of the original image; chosen to be
# exactly representable in float32 (multiples of 1/4) so a float32 API gets the identical input.
CASES_WIDE = [
    ("point", dict(points=[[[75, 50]]], labels=[[1]], multimask=True)),
    ("points3", dict(points=[[[60.5, 44.25], [95, 55], [149, 99]]], labels=[[1, 1, 0]], multimask=False)),
    ("box", dict(boxes=[[30, 20, 120, 85]], multimask=True)),
    ("box_point", dict(points=[[[80, 50]]], labels=[[1]], boxes=[[30, 20, 120, 85]], multimask=False)),
    ("mask_point", dict(points=[[[75, 50]]], labels=[[1]], mask_from="point", multimask=False)),
    ("two_boxes", dict(boxes=[[10, 10, 70, 60], [80, 30, 145, 95]], multimask=True)),
    ("mask_only", dict(mask_from="point", multimask=True)),
]
CASES_SMALL = [
    ("point", dict(points=[[[45, 30]]], labels=[[1]], multimask=True)),
    ("box", dict(boxes=[[12.5, 8, 80, 66.75]], multimask=True)),
    ("mask_point", dict(points=[[[40, 35]]], labels=[[1]], mask_from="point", multimask=False)),
]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    args = ap.parse_args()
    out: Path = args.out

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    common._self_check_rle()

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model_dir = out / "model"

    cfg = common.tiny_config()
    model = common.build_model(cfg, SEED)
    processor = common.make_processor(128, 64)
    print(f"image processor: {type(processor.image_processor).__name__}; "
          f"attn_implementation: {model.config._attn_implementation}")

    model.save_pretrained(model_dir, safe_serialization=True)
    common.save_processor(processor, model_dir)

    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        keys = sorted(f.keys())
    pe_keys = [k for k in keys if k.endswith("positional_embedding")]
    print(f"model.safetensors: {len(keys)} tensors; positional_embedding keys: {pe_keys}")
    # Finding (transformers 5.18): only "shared_image_embedding.positional_embedding" is stored;
    # the tied "prompt_encoder.shared_embedding.positional_embedding" is omitted (tie_word_embeddings
    # / _tied_weights_keys), so a loader must alias it.  Asserted below.
    assert "shared_image_embedding.positional_embedding" in keys

    # Round-trip: the saved checkpoint + processor reproduce the in-memory model.
    from transformers import SamModel, SamProcessor

    reloaded = SamModel.from_pretrained(model_dir).eval()
    reloaded_proc = SamProcessor.from_pretrained(model_dir)
    sd_a, sd_b = model.state_dict(), reloaded.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k
    print(f"reloaded processor: {type(reloaded_proc.image_processor).__name__}, "
          f"size={dict(reloaded_proc.image_processor.size)}")
    model = reloaded
    processor = reloaded_proc

    img_paths = make_images(out)
    images_json = []
    cases_json = []
    for key, cases in (("wide", CASES_WIDE), ("small", CASES_SMALL)):
        image = Image.open(img_paths[key]).convert("RGB")  # decode back from PNG, as Node will
        enc = processor(images=image, return_tensors="pt")
        pv = enc["pixel_values"]
        assert pv.dtype == torch.float32 and tuple(pv.shape) == (1, 3, 128, 128)
        with torch.no_grad():
            emb = model.get_image_embeddings(pv)
        assert tuple(emb.shape) == (1, 32, 16, 16)
        common.write_f32(out / f"{key}.pixel_values.f32", pv[0])
        common.write_f32(out / f"{key}.embedding.f32", emb[0])
        resized = [int(v) for v in enc["reshaped_input_sizes"][0].tolist()]
        images_json.append({
            "file": img_paths[key].name,
            "width": image.width,
            "height": image.height,
            "resized": resized,
            "pixelValues": f"{key}.pixel_values.f32",
            "embedding": f"{key}.embedding.f32",
        })
        print(f"\n{key}.png {image.width}x{image.height} resized={resized} "
              f"embedding mean={emb.mean():.4f} std={emb.std():.4f}")

        results = {}
        for name, spec in cases:
            mask_input = None
            mask_file = None
            if "mask_from" in spec:
                src = results[spec["mask_from"]]
                best = int(np.argmax(src["iou"][0]))
                mask_input = src["lowres"][0, best]
                mask_file = f"{key}.{name}.maskinput.f32"
                common.write_f32(out / mask_file, mask_input)
            r = common.run_prompt(
                model, processor, image, emb,
                points=spec.get("points"), labels=spec.get("labels"), boxes=spec.get("boxes"),
                mask_input=mask_input, multimask=spec["multimask"],
            )
            results[name] = r
            P, M = r["lowres"].shape[:2]
            H, W = r["masks"].shape[-2:]
            assert r["lowres"].shape == (P, M, 64, 64) and r["iou"].shape == (P, M)
            assert (H, W) == (image.height, image.width)
            assert M == (3 if spec["multimask"] else 1)
            base = f"{key}.{name}"
            common.write_f32(out / f"{base}.lowres.f32", r["lowres"])
            common.write_f32(out / f"{base}.iou.f32", r["iou"])
            common.write_u8(out / f"{base}.masks.u8", r["masks"])
            inp = r["inputs"]
            pos = [[round(float(r["masks"][p, m].mean()), 4) for m in range(M)] for p in range(P)]
            near = [[int((np.abs(r["upsampled"][p, m]) < 1e-3).sum()) for m in range(M)] for p in range(P)]
            lowpos = [[round(float((r["lowres"][p, m] > 0).mean()), 4) for m in range(M)] for p in range(P)]
            cases_json.append({
                "name": name,
                "image": img_paths[key].name,
                "points": spec.get("points"),
                "labels": spec.get("labels"),
                "boxes": spec.get("boxes"),
                "maskInput": mask_file,
                "multimask": spec["multimask"],
                "lowres": f"{base}.lowres.f32",
                "iou": f"{base}.iou.f32",
                "masks": f"{base}.masks.u8",
                "shape": {"P": int(P), "M": int(M), "H": int(H), "W": int(W)},
                "modelPoints": inp["input_points"][0].tolist() if "input_points" in inp else None,
                "modelBoxes": inp["input_boxes"][0].tolist() if "input_boxes" in inp else None,
                "positiveFraction": pos,
                "nearThreshold": near,
            })
            dtypes = {k: str(inp[k].dtype) for k in ("input_points", "input_labels", "input_boxes") if k in inp}
            print(f"  {name:11s} P={P} M={M} iou={np.round(r['iou'], 3).tolist()} "
                  f"pos(mask)={pos} pos(lowres)={lowpos} near0={near} "
                  f"logits[{r['lowres'].min():.2f},{r['lowres'].max():.2f}] {dtypes}")
            for p in range(P):
                for m in range(M):
                    f = pos[p][m]
                    if not (0.01 < f < 0.99):
                        print(f"    WARNING: {base} mask [{p},{m}] is nearly constant ({f})")

    doc = {
        "config": {**common.config_summary(cfg), "seed": SEED,
                   "transformers": __import__("transformers").__version__,
                   "torch": torch.__version__.split("+")[0]},
        "model": "model",
        "images": images_json,
        "cases": cases_json,
    }
    (out / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")

    total = 0
    print(f"\nfiles in {out}:")
    for p in sorted(out.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            print(f"  {p.relative_to(out)!s:40s} {p.stat().st_size:8d}  {sha(p)}")
    print(f"total {total} bytes")
    if total > 3 * 1024 * 1024:
        print("ERROR: fixture directory exceeds 3 MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
