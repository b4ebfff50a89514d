// Runs the SAM model of omniseg's C++ core without Node, for the GPU check (scripts/gpu-check.sh)
// on machines that have a GPU but no Node.js: encodes one raw RGB image and decodes prompt
// cases, writes the outputs as raw little-endian arrays and prints timings as JSON.
//
//   sam_gpu --model DIR --image FILE.rgb --width W --height H --out DIR [--device cuda|cpu]
//           [--precision fp32|fp16|bf16] [--threads N] [--iters N] [--batch B] [--oom-check 1]
//           [--graph-check 1] [--case NAME=SPEC]...
//   SPEC: ';'-separated items: p:x,y,label (point) | b:x0,y0,x1,y1 (box) | multimask
//
// Writes OUT/embedding.f32 ([C, E, E]) and OUT/NAME.{iou.f32,lowres.f32,masks.u8}; prints
// {"device","encodeMs":{"min","median"},"cases":{NAME:{"min","median","rle","rleCheck"}}} (ms,
// after a warm-up; "rle": the decode with the masks as run lengths, "rleCheck": "pass" when
// those are the runs of the masks, "mismatch" when not, "logits differ" when that decode's logits
// are not bit for bit the first one's, so its masks may differ).
// With --batch B > 1 also encodes B copies of the image in one encodeBatch call: "batch",
// "encodeBatchMs" (the whole batch) and OUT/embedding-batch-last.f32 (the last image's).
// --oom-check 1 (CUDA): holds all but ~1 MiB of the free device memory, expects an encode to
// throw out-of-memory, frees it and expects the next encode to equal the first: "oomCheck".
// --graph-check 1 (CUDA): encoder graphs (OMNISEG_CUDA_ENCODER_GRAPHS, switched here) against
// op by op on two different images (the image and its mirror image), alone and as a batch of two
// in both orders, each replayed after the graph was recorded from the other: "graphCheck".
// "pinned": the result buffers' page-locked pool after the decodes (core/host_memory.h; all 0
// with OMNISEG_PINNED_MB=0 or on the CPU).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/host_memory.h"
#include "models/sam/sam.h"
#ifdef OMNISEG_CUDA
#include <cuda_runtime.h>
#endif
#include "test/gpu/driver.h"
#include "test/native/coco_counts.h"

using namespace omniseg;
using namespace omniseg::gpucheck;

namespace {

struct Case {
  std::string name;
  std::vector<float> points, boxes;
  std::vector<int32_t> labels;
  bool multimask = false;
};

Case parseCase(const std::string& arg) {
  auto [name, items] = splitCase(arg);
  Case c;
  c.name = name;
  for (const std::string& item : items) {
    if (item == "multimask") {
      c.multimask = true;
      continue;
    }
    std::vector<float> v;
    std::stringstream nums(item.substr(2));
    std::string n;
    while (std::getline(nums, n, ',')) v.push_back(std::stof(n));
    if (item.rfind("p:", 0) == 0 && v.size() == 3) {
      c.points.insert(c.points.end(), {v[0], v[1]});
      c.labels.push_back(static_cast<int32_t>(v[2]));
    } else if (item.rfind("b:", 0) == 0 && v.size() == 4) {
      c.boxes = v;
    } else {
      throw Error("bad case item: " + item);
    }
  }
  return c;
}

// COCO counts of `planes` row-major [H, W] masks, walked down each column (pycocotools
// rleEncode), back to back; runsPerMask must say how many each has, else the result differs.
HostVector<uint32_t> cocoCounts(const uint8_t* masks, size_t planes, int64_t H, int64_t W,
                                const HostVector<uint32_t>& runsPerMask) {
  HostVector<uint32_t> counts;
  for (size_t p = 0; p < planes; ++p) {
    const size_t start = counts.size();
    appendCocoCounts(masks + static_cast<int64_t>(p) * H * W, H, W, counts);
    if (p >= runsPerMask.size() || counts.size() - start != runsPerMask[p]) counts.push_back(~0u);
  }
  return counts;
}

#ifdef OMNISEG_CUDA
// --graph-check: "pass", or what failed. Every replayed embedding must be an encode of its own
// image: within a tenth of the distance between the two images' embeddings of the op-by-op one
// (the same kernels; cuBLASLt may choose other algorithms for the graph's buffers).
std::string checkEncodeGraphs(sam::SamModel& model, const std::vector<uint8_t>& rgb, int64_t H, int64_t W) {
  std::vector<uint8_t> mirrored(rgb.size());
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) mirrored[(y * W + x) * 3 + c] = rgb[(y * W + (W - 1 - x)) * 3 + c];
  const int64_t n = static_cast<int64_t>(model.config().vision.outputChannels) * model.config().gridSize() *
                    model.config().gridSize();
  auto chw = [&](const sam::Embedding& e) {
    std::vector<float> v(static_cast<size_t>(n));
    model.embeddingToCHW(e, v.data());
    return v;
  };
  auto relL2 = [](const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      num += (a[i] - b[i]) * double(a[i] - b[i]);
      den += double(b[i]) * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-30));
  };
  using Images = std::vector<sam::SamModel::RgbImage>;
  const Images ab{{rgb.data(), H, W}, {mirrored.data(), H, W}}, ba{ab[1], ab[0]};
  setenv("OMNISEG_CUDA_ENCODER_GRAPHS", "0", 1);  // op by op
  const auto eA = chw(*model.encode(rgb.data(), H, W)), eB = chw(*model.encode(mirrored.data(), H, W));
  const auto eBA = model.encodeBatch(ba);
  const auto eBA0 = chw(*eBA[0]), eBA1 = chw(*eBA[1]);
  setenv("OMNISEG_CUDA_ENCODER_GRAPHS", "1", 1);
  model.encode(rgb.data(), H, W);  // (records the graph of one image, if not yet)
  const auto gB = model.encode(mirrored.data(), H, W);
  model.encodeBatch(ab);  // (records the graph of two)
  const auto gBA = model.encodeBatch(ba);
  unsetenv("OMNISEG_CUDA_ENCODER_GRAPHS");
  if (!gB->replayed || !gBA[0]->replayed || !gBA[1]->replayed) return "an encode was not replayed from a graph";
  const double apart = relL2(eB, eA), e1 = relL2(chw(*gB), eB), e2 = relL2(chw(*gBA[0]), eBA0),
               e3 = relL2(chw(*gBA[1]), eBA1);
  // A replay runs the same kernels on the same values; only cuBLASLt's choice of algorithm for
  // the graph's buffers may differ, far under a fifth of bf16's parity bound (5e-2, gpu_check.py).
  // The two images must lie much further apart than that, or a replay of the other image's
  // pixels (a stale input) would pass.
  const double bound = 1e-2;
  std::ostringstream s;
  s << "rel L2 to op by op " << e1 << " (one image), " << e2 << " / " << e3 << " (batch of two), bound " << bound
    << "; the images " << apart << " apart";
  if (std::max({e1, e2, e3}) > bound || !(apart > 10 * bound)) return "FAIL: " + s.str();

  // A recording while another thread allocates and frees device memory, as the JS thread does
  // when an embedding is collected, or another worker with its arena: the (relaxed) capture must
  // still succeed, and the next encode of that size replay it.
  std::atomic<bool> stop{false};
  std::atomic<int> frees{0}, failures{0};
  std::thread churn([&] {
    while (!stop.load()) {
      void* p = nullptr;
      if (cudaMalloc(&p, size_t{1} << 20) != cudaSuccess || cudaFree(p) != cudaSuccess) {
        cudaGetLastError();
        ++failures;
      } else {
        ++frees;
      }
    }
  });
  const Images aba{ab[0], ab[1], ab[0]};
  setenv("OMNISEG_CUDA_ENCODER_GRAPHS", "1", 1);
  const auto oABA = model.encodeBatch(aba);  // (op by op, then records the graph of three while the thread churns)
  stop = true;
  churn.join();
  const auto gABA = model.encodeBatch(aba);
  unsetenv("OMNISEG_CUDA_ENCODER_GRAPHS");
  s << "; recorded beside another thread's " << frees.load() << " cudaMalloc/cudaFree pairs (" << failures.load()
    << " failed)";
  if (!gABA[0]->replayed || !gABA[2]->replayed)
    return "FAIL: the graph of three was not recorded beside the frees; " + s.str();
  const double e4 = std::max(relL2(chw(*gABA[0]), chw(*oABA[0])), relL2(chw(*gABA[1]), chw(*oABA[1])));
  s << ", its replay " << e4 << " from op by op";
  return e4 <= bound && failures.load() == 0 ? "pass: " + s.str() : "FAIL: " + s.str();
}
#endif

int run(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"device", "cuda"}, {"threads", "4"}, {"iters", "10"}};
  std::vector<std::string> caseArgs;
  parseArgs(argc, argv, opt, "case", caseArgs);
  std::vector<Case> cases;
  for (const auto& a : caseArgs) cases.push_back(parseCase(a));
  for (const char* k : {"model", "image", "width", "height", "out"})
    if (!opt.count(k)) throw Error(std::string("missing --") + k);
  const int64_t W = std::stoll(opt["width"]), H = std::stoll(opt["height"]);
  const int iters = std::stoi(opt["iters"]);
  const std::vector<uint8_t> rgb = readFile<uint8_t>(opt["image"], static_cast<size_t>(W * H * 3));
  const Device device = opt["device"] == "cuda" ? Device::Cuda : Device::Cpu;
  const std::string prec = opt.count("precision") ? opt["precision"] : "fp32";
  const Precision precision = prec == "fp16"   ? Precision::Fp16
                                   : prec == "bf16" ? Precision::Bf16
                                                    : Precision::Fp32;
  auto model = sam::SamModel::load(opt["model"], std::stoi(opt["threads"]), device, precision);
  const auto& cfg = model->config();

  std::shared_ptr<sam::Embedding> emb;
  const Stats enc = timeIt(iters, [&] { emb = model->encode(rgb.data(), H, W); });
  const double preprocessMs = emb->preprocessMs;  // of the last run
  const int64_t E = cfg.gridSize(), C = cfg.vision.outputChannels;
  std::vector<float> chw(static_cast<size_t>(C * E * E));
  model->embeddingToCHW(*emb, chw.data());
  writeFile(opt["out"] + "/embedding.f32", chw.data(), chw.size());
  const int64_t batch = opt.count("batch") ? std::stoll(opt["batch"]) : 1;
  Stats encBatch;
  if (batch > 1) {
    const std::vector<sam::SamModel::RgbImage> images(static_cast<size_t>(batch), {rgb.data(), H, W});
    std::vector<std::shared_ptr<sam::Embedding>> embs;
    encBatch = timeIt(iters, [&] { embs = model->encodeBatch(images); });
    std::vector<float> last(chw.size());
    model->embeddingToCHW(*embs.back(), last.data());
    writeFile(opt["out"] + "/embedding-batch-last.f32", last.data(), last.size());
  }

  std::string oom;
#ifdef OMNISEG_CUDA
  if (opt.count("oom-check") && opt["oom-check"] == "1" && device == Device::Cuda) {
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    void* hog = nullptr;
    const size_t grab = free > (size_t{1} << 20) ? free - (size_t{1} << 20) : 0;
    if (grab == 0 || cudaMalloc(&hog, grab) != cudaSuccess) {
      cudaGetLastError();
      oom = "could not reserve memory";
    } else {
      bool threw = false;
      std::string what;
      try {
        model->encode(rgb.data(), H, W);
      } catch (const std::exception& ex) {
        threw = true;
        what = ex.what();
      }
      cudaFree(hog);
      std::vector<float> again(chw.size());
      model->embeddingToCHW(*model->encode(rgb.data(), H, W), again.data());
      const bool same = again == chw;
      oom = !threw ? "encode did not fail with the memory taken"
            : what.find("out of memory") == std::string::npos ? "unexpected error: " + what
            : !same ? "the encode after the out-of-memory error differs"
                    : "pass";
    }
  }
#endif
  std::string graphCheck;
#ifdef OMNISEG_CUDA
  if (opt.count("graph-check") && opt["graph-check"] == "1" && device == Device::Cuda)
    graphCheck = checkEncodeGraphs(*model, rgb, H, W);
#endif
  std::ostringstream json;
  json << "{\"device\":\"" << opt["device"] << "\",\"precision\":\"" << prec << "\",\"encodeMs\":{\"min\":" << enc.min
       << ",\"median\":" << enc.median << "},\"preprocessMs\":" << preprocessMs;
  if (batch > 1) json << ",\"batch\":" << batch << ",\"encodeBatchMs\":" << statsJson(encBatch);
  if (!oom.empty()) json << ",\"oomCheck\":\"" << oom << "\"";
  if (!graphCheck.empty()) json << ",\"graphCheck\":\"" << graphCheck << "\"";
  json << ",\"cases\":{";
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    sam::DecodeRequest r;
    r.pointsPerPrompt = static_cast<int64_t>(c.labels.size());
    r.points = c.points.empty() ? nullptr : c.points.data();
    r.labels = c.labels.empty() ? nullptr : c.labels.data();
    r.boxes = c.boxes.empty() ? nullptr : c.boxes.data();
    r.multimask = c.multimask;
    sam::DecodeResult out;
    const Stats dec = timeIt(iters * 5, [&] { out = model->decode(*emb, r); });
    const std::string base = opt["out"] + "/" + c.name;
    writeFile(base + ".iou.f32", out.iou.data(), out.iou.size());
    writeFile(base + ".lowres.f32", out.lowRes.data(), out.lowRes.size());
    writeFile(base + ".masks.u8", out.masks.data(), out.masks.size());
    // The same decode with the masks as COCO run lengths (on the device with CUDA): they must
    // be the runs of the masks above.
    r.rle = true;
    sam::DecodeResult runs;
    const Stats rle = timeIt(iters * 5, [&] { runs = model->decode(*emb, r); });
    // It is another graph (other buffers, so cuBLASLt may pick other algorithms): when its logits
    // differ from the first decode's, a mask pixel may differ too, and the check is inconclusive.
    const bool rleSame = runs.runs == cocoCounts(out.masks.data(), out.iou.size(), emb->original.height,
                                                 emb->original.width, runs.runsPerMask);
    const bool logitsSame = runs.lowRes == out.lowRes && runs.iou == out.iou;
    const char* rleCheck = rleSame ? "pass" : logitsSame ? "mismatch" : "logits differ";
    json << (i ? "," : "") << "\"" << c.name << "\":{\"min\":" << dec.min << ",\"median\":" << dec.median
         << ",\"rle\":" << statsJson(rle) << ",\"rleCheck\":\"" << rleCheck << "\"}";
  }
  const host_memory::Stats pinned = host_memory::pinnedStats();
  json << "},\"pinned\":{\"heldBytes\":" << pinned.heldBytes << ",\"hits\":" << pinned.hits
       << ",\"misses\":" << pinned.misses << ",\"fallbacks\":" << pinned.fallbacks << "}}";
  std::cout << json.str() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return runMain("sam_gpu", argc, argv, run); }
