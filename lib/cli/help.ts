// Help texts of the `omniseg` command line.
import { DEFAULT_MAX_CLICKS } from '../eval/clicks.js';
import {
  DEFAULT_BATCH_DELAY_MS,
  DEFAULT_CACHE_MB,
  DEFAULT_HEATMAP_CACHE_MB,
  DEFAULT_HOST,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_QUEUE,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from '../server/defaults.js';
import { DEFAULT_TEXT_WEIGHT } from '../referrer.js';
import { DEFAULT_HEAT_THRESHOLD, DEFAULT_MIN_AREA } from '../referring/index.js';
import { DEFAULT_BENCH_RUNS, type CommandName } from './args.js';

const OVERVIEW = `Usage: omniseg <command> [options]

Segment Anything (SAM) in Node.js, on the CPU or an NVIDIA GPU (CUDA build).

Commands:
  segment   segment an image from point, scribble, box and mask prompts
  segment-frames
            segment a sequence of frames (a directory or glob), a mask per frame
  encode    run the image encoder and save the embedding
  bench     time the image encoder and the mask decoder
  info      print version, platform and available backends
  eval      score predictions against ground truth (cIoU, gIoU, PointM, NoC)
  serve     run the HTTP segmentation server (embedding cache, queues, metrics)
  heatmap   the CLIPSeg heat map of a text and/or reference image over an image
  pull      download a model of the registry (sam-vit-base, ...) into the cache

Run "omniseg <command> --help" for a command's options.
Set OMNISEG_DEBUG=1 to print stack traces with errors.
`;

const MODEL_OPTIONS = `  --model <dir|id>      checkpoint directory (transformers layout: config.json,
                        model.safetensors, preprocessor_config.json), or a registry id
                        (see omniseg pull), downloaded on first use   [required]
  --device <d>          cpu, cuda or auto (default: auto, which is CUDA when the CUDA build
                        (npm run build:cuda) and a usable GPU are present, else CPU;
                        OMNISEG_DEVICE=cpu forces the CPU)
  --precision <p>       the image encoder's arithmetic on CUDA: fp32, fp16 or bf16
                        (default: fp32; the CPU always runs fp32)
  --cpu-matmul <m>      the image encoders' matrix products (linear layers, attention) on CPU
                        (SAM's, and CLIPSeg's vision tower with --referrer): bf16x3 (default;
                        on CPUs with AMX, Intel Sapphire Rapids and later, encoders ~1.6x
                        faster, ~4e-6 relative error per matrix product; elsewhere it runs as
                        fp32) or fp32; ignored on CUDA
  --threads <n>         worker threads (default: the machine's hardware threads)`;

const TOPICS: Record<CommandName, string> = {
  segment: `Usage: omniseg segment <image> --model <dir> [prompts] [options]

Segments <image> (a file: PNG, JPEG, WebP, ...) from prompts in pixels of the image
(x to the right, y down). At least one prompt is required.

Prompts:
  --point <x,y,label>   a click; label 1 positive, 0 negative (repeatable)
  --scribble <x0,y0;x1,y1;...:label>
                        a polyline, label 1 positive, 0 negative (repeatable; quote
                        it for the shell); it becomes up to 8 clicks evenly spaced
                        along it, endpoints included
  --box <x0,y0,x1,y1>   a box
  --mask-input <file>   low-res mask logits: 256x256 little-endian float32 (as --save-logits writes)

Options:
${MODEL_OPTIONS}
  --multimask           return SAM's 3 candidate masks instead of 1
  --json                print one JSON object:
                        {"width","height","masks":[{"score","box","area","rle"}],
                         "timings":{"encodeMs","decodeMs"}}
                        rle is COCO RLE {"size":[h,w],"counts":"<compressed string>"}
  --save-logits <file>  write the low-res logits, float32 [masks, 256, 256]
  --out <file>          write the image with the best-scoring mask drawn over it
  -h, --help            show this help

Referring (segment what texts and/or reference images refer to; replaces --mask-input,
--multimask, --save-logits and --out; --point, --scribble and --box then narrow the result):
  --referrer <dir|id>   CLIPSeg checkpoint directory (transformers layout with the CLIP
                        tokenizer: vocab.json + merges.txt or tokenizer.json)
  --text <text>         a referring expression (repeatable)
  --ref-image <file>    a reference image, a visual prompt (repeatable)
  --text-weight <w>     with one --text and one --ref-image, the text embedding's weight
                        in [0, 1] (default: ${DEFAULT_TEXT_WEIGHT})
  --ref-mask <png>      a region of the (only) --ref-image as a mask at its size (non-zero inside)
  --ref-box x0,y0,x1,y1 a region of the (only) --ref-image as a box; the prompt is the region's
                        crop, background blurred and darkened (CLIPSeg's visual prompt engineering)
  --each                one result per prompt (texts first, then reference images) instead of
                        one result for all the prompts fused (their embeddings averaged)
  --threshold-heat <t>  heat-map pixels strictly above t make the instances, in [0, 1]
                        (default: ${DEFAULT_HEAT_THRESHOLD}); none above it: "noTarget": true, no masks
  --min-area <a>        smallest instance, a fraction of the image (default: ${DEFAULT_MIN_AREA})
  --point / --scribble  clicks on the image: positive ones keep only the masks that contain
                        one of them, negative ones go into every instance's SAM prompt
  --box                 only the instances that meet the box, clipped to it
  --vocabulary <a,b,..> label each mask from these labels (comma-separated, repeatable)
  --vocabulary-file <f> the labels, one per line
  With --json, the object above plus "noTarget" and "prompts" ([{"texts","refImages",
  "noTarget"}], one per query) at the end; timings add "heatmapMs" (decodeMs: instances, SAM
  decodes and NMS); each mask adds "instance" (its heat-map instance, strongest peak first),
  "referScore" (score x the instance's mean heat), "prompt" (index of the query it answers)
  and, with a vocabulary, "label" and "labels" ([{"label","probability"}], top 5: CLIP
  zero-shot classification of the mask's region). Masks come by query, then descending
  referScore.
`,
  'segment-frames': `Usage: omniseg segment-frames <frames> --model <dir> [prompts] --out-dir <dir> [options]

Segments a sequence of frames with one prompt and writes the best mask of each frame to
<out-dir>/<frame name>.png (8-bit grey, 255 inside, 0 outside). <frames> is a directory
(its .png, .jpg, .jpeg, .webp, .tif, .tiff, .gif and .avif files), a glob with wildcards
in the file name only (quote it for the shell: "frames/*.png"), or one file; frames are
taken in natural order (frame2 before frame10). Decoding, encoding and mask decoding of
successive frames overlap, at most 3 frames in flight. Prints a line per frame, then the
frames per second (from the first frame read to the last mask written).

Prompts (for the first frame; with --follow, for every frame without it):
  --point <x,y,label>   a click; label 1 positive, 0 negative (repeatable)
  --scribble <x0,y0;x1,y1;...:label>
                        a polyline, label 1 positive, 0 negative (repeatable)
  --box <x0,y0,x1,y1>   a box

Options:
${MODEL_OPTIONS}
  --out-dir <dir>       where to write the masks (created if missing)  [required]
  --follow              track the object: prompt each frame after the first with the
                        previous frame's best mask (its box and low-res logits); falls back
                        to the prompts when that mask is empty
  --multimask           decode SAM's 3 candidate masks per frame and keep the best
  --json                print one JSON object at the end:
                        {"frames","seconds","framesPerSecond",
                         "masks":[{"frame","mask","score","area","box"}]}
  -h, --help            show this help
`,
  encode: `Usage: omniseg encode <image> --model <dir> --save-embedding <file> [options]

Runs the image encoder on <image> and writes the embedding as little-endian float32
[channels, size, size] (e.g. [256, 64, 64]).

Options:
${MODEL_OPTIONS}
  --save-embedding <file>  where to write the embedding                [required]
  --json                print {"width","height","embeddingShape","timings":{"encodeMs"}}
  -h, --help            show this help
`,
  bench: `Usage: omniseg bench --model <dir> --image <file> [options]

Times the model on one image: 1 warm-up, then the timed runs. encodeMs is the median
time of Segmenter.encode() on the decoded pixels; decodeMs the median time of
Segmenter.segment() on the cached embedding with one positive point at the image centre
(multimask, masks at image size), 5 decodes per encode (the first of each includes the
once-per-image decoder cache). Both are measured in JavaScript around the call.

Options:
${MODEL_OPTIONS}
  --image <file>        the image                                      [required]
  --runs <n>            timed runs (default: ${DEFAULT_BENCH_RUNS})
  --json                print {"encodeMs","decodeMs","peakRssMB","device","precision",
                         "cpuMatmul"} (device, precision and cpuMatmul: what the model ran
                        on; cpuMatmul is bf16x3 only on a CPU with AMX)
  -h, --help            show this help
`,
  info: `Usage: omniseg info [--json]

Prints the omniseg version, Node.js version, platform, hardware threads and backends (the CPU's
"amx": whether --cpu-matmul bf16x3 runs on AMX tiles here).

Options:
  --json                print one JSON object
  -h, --help            show this help
`,
  eval: `Usage: omniseg eval --gt <file> --pred <file> [--report <file.html>] [--json]
       omniseg eval --gt <file> --heatmaps <dir> [--json]
       omniseg eval --gt <file> --clicks --model <dir> [options] [--json]
       omniseg eval --dataset <file.jsonl> --model <dir> [--referrer <dir>] [--out <file>]
                    [--report <file.html>] [--json]
       omniseg eval --convert grefcoco --grefs <grefs(unc).json> --instances <instances.json>
                    --images <dir> [--split <name>] --out <file.jsonl>

Scores against ground truth. Files are JSON arrays or JSONL, one record per sample:
  ground truth  {"id", "height", "width", "masks": [RLE | polygons...], "image"?}
  predictions   {"id", "masks": [RLE...]}          (any order, matched by id)
RLE is COCO's {"size": [h, w], "counts"}, counts compressed string or list of run lengths;
polygons are an object's COCO [[x0,y0,x1,y1,...],...], rasterised as pycocotools does.
A side's masks are united per sample; a ground truth without masks is a no-target sample.
A ground-truth id without a prediction is scored as an empty prediction (with a warning).

Modes (exactly one):
  --pred <file>         predicted masks: cIoU, gIoU, mIoU, precision@0.5..0.9, nAcc, tAcc
  --heatmaps <dir>      heat maps <dir>/<id>.f32 (height x width little-endian float32):
                        PointM = hits / (hits + misses), a hit when the maximum lies in
                        the mask; samples without a target are skipped
  --clicks              simulate clicks with --model (RITM / SimpleClick protocol: first
                        click farthest inside the mask, then farthest inside the largest
                        error region, previous logits fed back); NoC@85 and NoC@90.
                        Each sample needs "image" (relative to the ground-truth file)
  --dataset <file>      run --model over a JSONL dataset, one sample per line:
                        {"id","image","height","width","masks":[RLE | polygons...],
                         "points"?:[[x,y,label]...],"boxes"?:[[x0,y0,x1,y1]...],
                         "text"?,"refImage"?,"refRegion"?:{"box"}|{"scribble"}|{"mask":RLE}}
                        polygons: one object's COCO polygons [[x0,y0,x1,y1,...],...],
                        rasterised as pycocotools does. "image" and "refImage" are
                        relative to the dataset. points/boxes alone run SAM; "text" and/or
                        "refImage" run referSegment (needs --referrer), narrowed by the
                        points and at most one box. Prints the --pred metrics
  --convert grefcoco    write gRefCOCO's release as a --dataset JSONL (--out): one sample
                        per (ref, sentence), the "raw" sentence as "text", the union of the
                        ref's non-crowd annotations as the mask, none for "ann_id": [-1]
                        (no target); image paths relative to --out

Options:
  --gt <file>           ground truth          [required but with --dataset or --convert]
  --json                print one JSON object:
                        --pred      {"cIoU","gIoU","precision":{"0.5",...,"0.9"},
                                     "nAcc","tAcc","count","mIoU"}
                        --heatmaps  {"PointM","hits","misses"}
                        --clicks    {"NoC@85","NoC@90","NoF@85","NoF@90","count"}
                        (null where there is nothing to count)
  --max-clicks <n>      click budget with --clicks (default: ${DEFAULT_MAX_CLICKS})
  --referrer <dir>      CLIPSeg checkpoint for --dataset samples with "text" / "refImage"
  --out <file>          --dataset: per-sample JSONL {"id","masks":[RLE...],"iou","timings"};
                        --convert: the dataset written
  --report <file.html>  --pred or --dataset: a self-contained HTML report: the metrics, a
                        histogram of the per-sample IoU and, worst first, up to 100 samples
                        with thumbnails (image and prompts with --dataset, ground truth,
                        prediction)
  --grefs, --instances, --images, --split
                        --convert: grefs(unc).json, COCO instances.json, the images' folder,
                        and the one split to keep (e.g. val, testA)
  -h, --help            show this help

With --clicks or --dataset:
${MODEL_OPTIONS}
`,
  serve: `Usage: omniseg serve --model <dir> [options]

Runs the HTTP segmentation server until SIGINT or SIGTERM (then it stops accepting,
finishes the requests in flight and exits). Logs are JSON lines (pino) on stdout.

Endpoints:
  POST /v1/embeddings   raw image (Content-Type: image/*) or multipart field "image"
                        -> {"imageId","width","height"}; the embedding is cached by imageId
  POST /v1/segment      {"imageId" | "image": <base64>, "points": [[x,y,label]...],
                         "boxes": [[x0,y0,x1,y1]...], "scribbles": [{"path","label","dense"}...],
                         "mask": <base64 PNG, image size>, "maskInput": <base64 float32 LxL>,
                         "multimask", "format": "rle" | "png" | "polygons"}
                        -> {"imageId","masks","timings"}
                        with --referrer: a referring prompt {"text", "refImage", "refRegion":
                         {"box"} | {"scribble"} | {"mask": <base64 PNG>}, "textWeight"} or
                         {"prompts": [...], "weights"}, narrowed by "points", "scribbles" and
                         one "box" on the image, "threshold", "minArea" -> "noTarget";
                         "vocabulary": [...], "topK" add "label"/"labels" to each mask
  POST /v1/heatmap      {"imageId" | "image", "text", "refImage", "refRegion", "textWeight" |
                         "prompts", "weights", "format": "float32" | "png"}
                        -> {"imageId","width","height","heatmapCached","timings",
                         "heatmap" | "png"} (--referrer)
  GET  /healthz, /readyz (503 until the model is loaded), /metrics (Prometheus)
Errors are {"error":{"code","message"}}; a full queue answers 429 with Retry-After.

Options:
${MODEL_OPTIONS}
  --host <host>         address to listen on (default: ${DEFAULT_HOST})
  --port <n>            port, 0 for any free one (default: ${DEFAULT_PORT})
  --cache-mb <m>        embedding cache budget, MiB (default: ${DEFAULT_CACHE_MB})
  --heatmap-cache-mb <m>
                        heat-map cache budget, MiB, 0 for none: heat maps by image and
                        query, reused across requests (default: ${DEFAULT_HEATMAP_CACHE_MB})
  --max-queue <q>       requests allowed to wait per queue, encoder and decoder
                        (default: ${DEFAULT_MAX_QUEUE}); beyond it, 429
  --max-batch <b>       encoder requests per batch, encoded in one native call
                        (1 to 64, default: ${DEFAULT_MAX_BATCH})
  --batch-delay-ms <d>  how long an idle encoder waits for a batch to fill
                        (default: ${DEFAULT_BATCH_DELAY_MS})
  --timeout-ms <t>      a request's deadline; later, 503 (default: ${DEFAULT_REQUEST_TIMEOUT_MS})
  --referrer <dir>      CLIPSeg checkpoint: POST /v1/heatmap and text prompts (else 501)
  -h, --help            show this help
`,
  heatmap: `Usage: omniseg heatmap <image> --model <dir> (--text <text> | --ref-image <file>)... [options]

Computes the CLIPSeg heat map of what texts and/or reference images refer to in <image>:
the sigmoid of the model's logits, resized to the image (bilinear), values in [0, 1].
Several prompts are fused into one (their embeddings averaged; one --text with one
--ref-image mixed by --text-weight).

Options:
  --model <dir|id>      CLIPSeg checkpoint directory (transformers layout with the CLIP
                        tokenizer: vocab.json + merges.txt or tokenizer.json), or the
                        registry id clipseg-rd64-refined (--referrer is the same)   [required]
  --text <text>         a referring expression (repeatable)
  --ref-image <file>    a reference image, a visual prompt (repeatable)
  --text-weight <w>     with one --text and one --ref-image, the text embedding's weight in
                        [0, 1] (default: ${DEFAULT_TEXT_WEIGHT})
  --ref-mask <png>      a region of the (only) --ref-image as a mask at its size (non-zero inside)
  --ref-box x0,y0,x1,y1 a region of the (only) --ref-image as a box; the prompt is the region's
                        crop, background blurred and darkened (CLIPSeg's visual prompt engineering)
  --device <d>          cpu, cuda or auto (default: auto)
  --cpu-matmul <m>      the vision tower's matrix products (linear layers, attention) on CPU:
                        bf16x3 (default; AMX CPUs, else fp32) or fp32; the text tower and
                        decoder always run in fp32
  --threads <n>         worker threads (default: the machine's hardware threads)
  --save <file>         write the model's raw logits, [size, size] little-endian float32 (size:
                        the model input side, 352 for clipseg-rd64-refined; for an image of that
                        size these are exactly the model's logits, nothing resized)
  --out <file>          write the image with the heat map blended over it in colour (jet:
                        blue 0 to red 1, half opacity)
  --save-f32 <file>     write the heat map as [height, width] little-endian float32
                        (the format of eval --heatmaps)
  --json                print {"width","height","size","max","mean",
                         "timings":{"preprocessMs","modelMs","postprocessMs","totalMs"}}
  -h, --help            show this help
`,
  pull: `Usage: omniseg pull <id> [--quiet] [--allow-unverified]

Downloads the files of registry model <id> into the cache and prints its directory, which
--model / --referrer accept (as they accept <id> itself, pulling it on first use).
Ids: sam-vit-base, sam-vit-large, sam-vit-huge, slimsam-77 (SAM), clipseg-rd64-refined
(CLIPSeg); "omniseg info" lists them with their cache status.

Downloads resume after a dropped connection; each file is checked against the registry's
size and SHA-256 before it is renamed into place.

Options:
  --quiet               no progress on stderr
  --allow-unverified    accept weights the registry has no SHA-256 for (as
                        OMNISEG_ALLOW_UNVERIFIED=1 does); they are refused otherwise.
                        Config/tokenizer files (.json, .txt), which the Hub publishes no
                        SHA-256 for, are taken at the pinned revision, at most 16 MiB
  -h, --help            show this help

Environment:
  OMNISEG_CACHE         the cache directory (default: ~/.cache/omniseg)
  OMNISEG_ENDPOINT, HF_ENDPOINT
                        a Hugging Face mirror (default: https://huggingface.co)
  OMNISEG_OFFLINE=1     never download: use the cache only
  OMNISEG_REGISTRY      a registry file (models/registry.json's format) whose models are
                        added to the built-in ones
`,
};

/** The help text for a command, or the overview. */
export function helpText(topic?: CommandName): string {
  return topic === undefined ? OVERVIEW : TOPICS[topic];
}
