"""PyTorch reference timings for `npm run bench:clipseg` (bench/clipseg.mjs): transformers
CLIPSegForImageSegmentation, fp32, default attention, on the same random clipseg-rd64-refined-shaped
checkpoint, image, texts and thread count omniseg is timed on.

  heatmapMs: one heat map as a transformers user makes it, the image already decoded:
             ViTImageProcessorPil (resize to 352, normalise) + CLIPTokenizer + forward (text tower,
             vision tower, decoder) + sigmoid + F.interpolate (bilinear) to the image size;
             median over --runs, a different text each run (PyTorch caches nothing either way)
  modelMs:   the forward pass alone (median of the same runs)
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--texts", required=True, help="JSON array: a warm-up text, then one text per timed run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import CLIPSegForImageSegmentation, CLIPTokenizer
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    model = CLIPSegForImageSegmentation.from_pretrained(args.model).eval()
    processor = ViTImageProcessorPil.from_pretrained(args.model)
    tokenizer = CLIPTokenizer.from_pretrained(args.model)
    image = Image.open(args.image).convert("RGB")
    texts = json.loads(args.texts)

    @torch.no_grad()
    def heatmap(text: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
        input_ids = tokenizer(text, return_tensors="pt")["input_ids"]
        t1 = time.perf_counter()
        logits = model(pixel_values=pixel_values, input_ids=input_ids).logits
        t2 = time.perf_counter()
        heat = F.interpolate(torch.sigmoid(logits)[:, None], size=(image.height, image.width),
                             mode="bilinear", align_corners=False)[0, 0]
        assert heat.shape == (image.height, image.width)
        t3 = time.perf_counter()
        return (t3 - t0) * 1e3, (t2 - t1) * 1e3

    heatmap(texts[0])  # warm-up
    runs = [heatmap(t) for t in texts[1:]]
    print(json.dumps({
        "heatmapMs": statistics.median(r[0] for r in runs),
        "modelMs": statistics.median(r[1] for r in runs),
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "attention": model.config._attn_implementation,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
