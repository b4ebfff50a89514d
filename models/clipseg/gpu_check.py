"""GPU parity and timing of omniseg's CLIPSeg on the CUDA backend against transformers on the same GPU.

Run by scripts/gpu-check.sh on a machine with an NVIDIA GPU, PyTorch and transformers (no Node
needed): it drives omniseg through the standalone program test/gpu/clipseg_gpu.cc.

  python3 models/clipseg/gpu_check.py --clipseg-gpu BIN --images DIR --tokenizer DIR [--work DIR] [--iters N]

1. Builds the random CIDAS/clipseg-rd64-refined-shaped model of parity.py (same seed and scheme).
2. Reference: transformers CLIPSegForImageSegmentation on the GPU in fp32 (TF32 off, eager
   attention) for parity.py's cases (text, visual prompt, text + visual mix) on the pixel values
   of its PIL processor and the ids of CLIPTokenizer.
3. omniseg: `clipseg_gpu --device cuda` on the same pixel values and ids.
4. Prints per case ||ours - ref|| / ||ref|| of the logits and of the conditional embedding, and
   of the difference of two texts' logits on one image; exit 1 above REL_L2_MAX.
5. Timings on this GPU in this run (median ms after warm-up): PyTorch eager forward (pixels and
   ids already on the GPU) in fp32; omniseg's heat map (host pixels -> host logits), and its
   parts: text embedding, vision tower, one decoder pass, a decoder pass over N embeddings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent


sys.path.insert(0, str(HERE))
import parity  # noqa: E402  (models/clipseg/parity.py: the model, cases and sam/common.py)

common = parity.common
REL_L2_MAX = 1e-4


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clipseg-gpu", required=True)
    ap.add_argument("--images", required=True, type=Path)
    ap.add_argument("--tokenizer", required=True, type=Path)
    ap.add_argument("--work", default="/tmp/omniseg-gpu-clipseg", type=Path)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    from transformers import CLIPSegForImageSegmentation, CLIPTokenizer
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    work: Path = args.work
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    model_dir = parity.ensure_model(work, args.tokenizer)
    S = parity.SIZE
    astro = Image.open(args.images / "astronaut.png").convert("RGB").resize((S, S), Image.Resampling.BILINEAR)
    images = {"astronaut352": astro, "chelsea": Image.open(args.images / "chelsea.png").convert("RGB")}

    dev = torch.device("cuda")
    model = CLIPSegForImageSegmentation.from_pretrained(model_dir, attn_implementation="eager").eval().to(dev)
    proc = ViTImageProcessorPil.from_pretrained(model_dir)
    tok = CLIPTokenizer.from_pretrained(model_dir)
    print(f"reference: transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name()}, fp32, TF32 off")
    pixels, files = {}, {}
    for key, im in images.items():
        pv = proc(images=im, return_tensors="pt")["pixel_values"]
        files[key] = run_dir / f"{key}.pixels.f32"
        common.write_f32(files[key], pv[0])
        pixels[key] = pv.to(dev)

    refs, conds, specs, kws = {}, {}, [], {}
    for name, image, text, ref_image, weight in parity.CASES:
        spec = [f"pixels={files[image]}"]
        ids = None
        if text is not None:
            ids = tok(text)["input_ids"]
            spec.append("ids=" + ",".join(map(str, ids)))
            ids = torch.tensor([ids], device=dev)
        if ref_image is not None:
            spec.append(f"ref={files[ref_image]}")
        if text is not None and ref_image is not None:
            spec.append(f"w={weight}")
        kw = parity.case_inputs(model, pixels[image], ids, None if ref_image is None else pixels[ref_image], weight)
        out = model(**kw)
        refs[name] = out.logits[0].float().cpu().numpy()
        conds[name] = out.conditional_embeddings[0].float().cpu().numpy()
        kws[name] = kw
        specs.append(f"{name}=" + ";".join(spec))

    cmd = [args.clipseg_gpu, "--model", str(model_dir), "--size", str(S), "--out", str(run_dir),
           "--device", "cuda", "--iters", str(args.iters)]
    for spec in specs:
        cmd += ["--case", spec]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"clipseg_gpu failed (rc {p.returncode}): {p.stderr.strip()[-3000:]}")
        return 1
    timings = json.loads(p.stdout.strip().splitlines()[-1])

    failures, ours = [], {}
    print("\n%-16s %11s %11s %11s" % ("case", "logits rel", "max abs", "cond rel"))
    for name, *_ in parity.CASES:
        got = common.read_f32(run_dir / f"{name}.logits.f32").reshape(S, S)
        cond = common.read_f32(run_dir / f"{name}.conditional.f32")
        ours[name] = got
        rel, mx, crel = common.rel_l2(got, refs[name]), common.max_abs(got, refs[name]), common.rel_l2(cond, conds[name])
        for what, v in (("logits", rel), ("conditional", crel)):
            if not v <= REL_L2_MAX:
                failures.append(f"{name}: {what} rel L2 {v:.3e} > {REL_L2_MAX:g}")
        print("%-16s %11.3e %11.3e %11.3e" % (name, rel, mx, crel))
    name, a, b = parity.DIFF
    drel = common.rel_l2(ours[a].astype(np.float64) - ours[b], refs[a].astype(np.float64) - refs[b])
    if not drel <= REL_L2_MAX:
        failures.append(f"{name}: rel L2 {drel:.3e} > {REL_L2_MAX:g}")
    print("%-16s %11.3e" % (name, drel))

    text_case = parity.CASES[0][0]
    torch_fp32 = common.cuda_time(lambda: model(**kws[text_case]), args.iters)
    with torch.autocast("cuda", dtype=torch.float16):
        torch_fp16 = common.cuda_time(lambda: model(**kws[text_case]), args.iters)
    ours_ms = timings["cases"][text_case]["median"]
    print(f"\ntimings (median ms, {args.iters} runs, {torch.cuda.get_device_name()}):")
    print(f"  heat map ({text_case}): omniseg fp32 {ours_ms:.2f}  PyTorch eager fp32 {torch_fp32:.2f} "
          f"(ratio {ours_ms / torch_fp32:.2f}x)  PyTorch autocast fp16 {torch_fp16:.2f}")
    for k in ("textMs", "imageFeaturesMs", "decodeMs", "decodeBatchMs"):
        if k in timings:
            print(f"  omniseg {k}: {timings[k]['median']:.2f} (min {timings[k]['min']:.2f})")
    print(f"  omniseg all cases: " + ", ".join(f"{k} {v['median']:.2f}" for k, v in timings["cases"].items()))
    return common.verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
