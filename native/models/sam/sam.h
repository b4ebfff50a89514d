// The Segment Anything Model: loads a transformers checkpoint directory, encodes images into
// embeddings, and decodes prompts into masks.
// ref: transformers/models/sam/modeling_sam.py SamModel, processing_sam.py SamProcessor
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "core/host_vector.h"
#include "core/thread_pool.h"
#include "core/weights.h"
#include "models/sam/config.h"
#include "models/sam/image_encoder.h"
#include "models/sam/image_processor.h"
#include "models/sam/mask_decoder.h"
#include "models/runtime.h"
#include "models/sam/prompt_encoder.h"

namespace omniseg {
namespace sam {

// An encoded image: the embedding [E*E, C] (NHWC, in the memory of the model's device) and the
// sizes needed to map prompts and masks.
struct Embedding {
  Device device = Device::Cpu;
  FloatBuffer data;
  Size original{0, 0}, resized{0, 0};
  double encodeMs = 0;
  double preprocessMs = 0;  // the host part of encodeMs (Pillow resize, staging)
  bool replayed = false;    // encoded by a recorded CUDA graph (OMNISEG_CUDA_ENCODER_GRAPHS=1)
  // First-layer image-side projections, computed on the first decode without a mask prompt.
  std::once_flag cacheOnce;
  ImageSideCache cache;
};

// Prompts for one decode, in pixels of the original image.
struct DecodeRequest {
  int64_t promptCount = 1;                // P
  int64_t pointsPerPrompt = 0;            // N
  const float* points = nullptr;          // [P, N, 2]
  const int32_t* labels = nullptr;        // [P, N]
  const float* boxes = nullptr;           // [P, 4] or null
  const float* maskInput = nullptr;       // [L, L] or null
  bool multimask = false;
  float threshold = 0.f;
  // Masks as COCO run lengths (DecodeResult::runs) instead of bytes: computed where the decode
  // runs (on the GPU with CUDA), so only the runs reach the host.
  bool rle = false;
};

struct DecodeResult {
  int64_t promptCount = 0, masksPerPrompt = 0;
  // Sized and then written in full by decode() (HostVector: no zero-fill pass first).
  HostVector<float> iou;       // [P, M]
  HostVector<float> lowRes;    // [P, M, L, L]
  HostVector<uint8_t> masks;   // [P, M, H, W]; empty with DecodeRequest::rle
  // With DecodeRequest::rle: each mask's COCO counts (column-major run lengths, starting with a
  // run of zeros), back to back; runsPerMask [P, M] says how many each has.
  HostVector<uint32_t> runs;
  HostVector<uint32_t> runsPerMask;
  // [P, M, 5]: each mask's x0, y0, x1, y1 and area (masks::maskBounds), taken as it is thresholded
  // on the CPU, or from its runs with rle; empty for a CUDA decode of pixels (left to the caller).
  HostVector<double> bounds;
  double decodeMs = 0;
};

class SamModel {
 public:
  // dir: config.json + model.safetensors [+ preprocessor_config.json]. threads ≥ 1 (host
  // threads: the whole pass on CPU, preprocessing on CUDA). precision: of the image encoder on
  // CUDA (the prompt encoder and mask decoder always run in fp32); CPU takes Fp32 only.
  // matmul: of the image encoder's matrix products on CPU (core/backend.h).
  static std::unique_ptr<SamModel> load(const std::string& dir, int threads,
                                        Device device = Device::Cpu,
                                        Precision precision = Precision::Fp32,
                                        CpuMatmul matmul = CpuMatmul::Bf16x3);
  ~SamModel();

  const SamConfig& config() const { return cfg_; }
  // Bytes an Embedding of this model holds at most: its data [E*E, C] and the image-side cache
  // its first decode without a mask prompt adds (TwoWayTransformer::precompute: [E*E, 3 * I]).
  int64_t embeddingBytes() const;
  // Native bytes the model keeps while loaded: its checkpoint's mapping (less the pages released
  // once converted or packed), the weights converted at load, and what its runtime keeps between
  // calls (Runtime::heldBytes). Thread-safe.
  int64_t heldBytes() const {
    return static_cast<int64_t>(weights_->bytesMappedKept() + weights_->bytesConverted() + rt_.heldBytes());
  }
  Device device() const { return rt_.device(); }
  Precision precision() const { return precision_; }
  CpuMatmul cpuMatmul() const { return rt_.cpuMatmul(); }

  // rgb [H, W, 3] uint8 (read in place).
  std::shared_ptr<Embedding> encode(const uint8_t* rgb, int64_t height, int64_t width);
  // Several images in one encoder pass (each GEMM over all of them); one embedding per image,
  // equal to encode()'s. encodeMs of each is the batch's time.
  struct RgbImage {
    const uint8_t* rgb;  // [height, width, 3], read in place
    int64_t height, width;
  };
  std::vector<std::shared_ptr<Embedding>> encodeBatch(const std::vector<RgbImage>& images);
  // A saved embedding, [C, E, E] (the reference's layout, host memory), for an image of
  // height × width.
  std::shared_ptr<Embedding> embeddingFromCHW(const float* chw, int64_t height, int64_t width);
  // embedding → [C, E, E] (host memory)
  void embeddingToCHW(const Embedding& e, float* chw);

  DecodeResult decode(Embedding& e, const DecodeRequest& r);

 private:
  SamModel(const SamConfig& cfg, std::unique_ptr<WeightStore> weights, int threads, Device device,
           Precision precision, CpuMatmul matmul);

  struct DecodeGraph;
  struct EncodeGraph;
  struct WorkerGraphs;  // a worker's recorded decodes and encodes (CUDA)
  static WorkerGraphs& graphsOf(Runtime::Worker& w);  // (made on first use)

  // Device memory a decode reads and writes between the host transfers.
  struct DecodeIO {
    float* sparse = nullptr;  // [P, Ns, C] sparse prompt tokens
    float* mask = nullptr;    // [L, L] mask prompt, or null
    const float* image = nullptr;  // [E*E, C] image embedding
    ImageSide side{nullptr, nullptr, nullptr};  // first-layer projections (no mask prompt)
    float* lowRes = nullptr;  // [P, M, L, L]
    float* iou = nullptr;     // [P, M]
    uint8_t* masks = nullptr; // [P, M, H, W]
    uint32_t* ends = nullptr;    // [P, M] with rle: ops::maskBoundaries of masks
    uint32_t* boundaries = nullptr;  // [P·M·H·W] capacity, with rle
    double* bounds = nullptr;  // [P, M, 5] host: DecodeResult::bounds of a CPU decode of pixels
    // masks and boundaries of a host rle decode past kArenaRleBytes, freed with the call (the worker's
    // arena keeps what it grows to until the model is disposed); plain heap memory, uninitialised
    // (HostVector's may come from the pinned pool, which keeps what it frees)
    std::unique_ptr<uint8_t[]> ownMasks;
    std::unique_ptr<uint32_t[]> ownBoundaries;
  };
  DecodeIO allocateIO(Ctx& ctx, const DecodeRequest& r, int64_t Ns, const Embedding& e,
                      DecodeResult* out = nullptr) const;
  void decodeOnDevice(Ctx& ctx, const Embedding& e, const DecodeRequest& r, int64_t Ns,
                      const DecodeIO& io) const;
  DecodeGraph& decodeGraph(Runtime::Worker& w, Ctx& ctx, const Embedding& e, const DecodeRequest& r,
                           int64_t Ns);
  // The worker's encoder graph for B images (opt-in, OMNISEG_CUDA_ENCODER_GRAPHS=1), or null:
  // the first encode of B images runs op by op, then records one (recordEncodeGraph) for the next.
  EncodeGraph* encodeGraph(Runtime::Worker& w, int64_t B);
  void recordEncodeGraph(Runtime::Worker& w, Ctx& ctx, int64_t B);

  SamConfig cfg_;
  Precision precision_;
  std::unique_ptr<WeightStore> weights_;
  Runtime rt_;  // thread pool, device copies of the weights and imagePe_, per-call workers
  std::unique_ptr<ImageEncoder> imageEncoder_;
  std::unique_ptr<PromptEncoder> promptEncoder_;
  std::unique_ptr<MaskDecoder> maskDecoder_;
  FloatBuffer imagePe_;  // [E*E, C] (host; mirrored on CUDA like a weight)
};

}  // namespace sam
}  // namespace omniseg
