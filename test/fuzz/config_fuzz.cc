// libFuzzer target for the checkpoint config readers: native/core/json_config.h as used by
// sam::loadConfig (config.json, preprocessor_config.json) and clipseg::loadConfig (config.json).
//
// Each input is written (to a private temporary directory) as
//   1. a SAM config.json,
//   2. a SAM preprocessor_config.json beside the tiny test checkpoint's config.json,
//   3. a CLIPSeg config.json,
// and loaded. Contract checked: every input is either accepted or refused with omniseg::Error
// (anything else thrown escapes and aborts: a finding), and what is accepted satisfies the
// consistency rules the model code relies on.
//
// Build and run: make -C test/fuzz run   (see the Makefile)
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"
#include "models/clipseg/config.h"
#include "models/sam/config.h"

using namespace omniseg;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// config.json of test/fixtures/sam-tiny/model (what the preprocessor file is checked against).
const char kSamTinyConfig[] =
    R"({"model_type":"sam","vision_config":{"hidden_size":48,"output_channels":32,)"
    R"("num_hidden_layers":3,"num_attention_heads":3,"image_size":128,"patch_size":8,)"
    R"("mlp_dim":96,"window_size":5,"global_attn_indexes":[1],"num_pos_feats":16},)"
    R"("prompt_encoder_config":{"hidden_size":32,"image_size":128,"patch_size":8,)"
    R"("mask_input_channels":16},"mask_decoder_config":{"hidden_size":32,"mlp_dim":64,)"
    R"("num_hidden_layers":2,"num_attention_heads":2,"iou_head_hidden_dim":32}})";

struct Dirs {
  std::string root, sam, samPre, clipseg;
  Dirs() {
    // On tmpfs where there is one: ext4 flushes a truncated-and-rewritten file on close, which
    // made the disk, not the parsers, the bottleneck (15x slower).
    struct stat st;
    std::string tmpl = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    tmpl += "/omniseg-config-fuzz.XXXXXX";
    require(mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
    sam = root + "/sam";
    samPre = root + "/sam-pre";
    clipseg = root + "/clipseg";
    for (const std::string* d : {&sam, &samPre, &clipseg}) require(mkdir(d->c_str(), 0700) == 0);
    write(samPre + "/config.json", kSamTinyConfig, sizeof kSamTinyConfig - 1);
  }
  ~Dirs() {  // at exit (not after a crash: the input is what matters then)
    for (const std::string* d : {&sam, &samPre, &clipseg}) {
      unlink((*d + "/config.json").c_str());
      unlink((*d + "/preprocessor_config.json").c_str());
      rmdir(d->c_str());
    }
    rmdir(root.c_str());
  }
  static void write(const std::string& path, const void* data, size_t size) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    require(static_cast<bool>(f));
  }
};

void checkSam(const sam::SamConfig& c) {
  const auto& v = c.vision;
  require(v.patchSize >= 1 && v.imageSize % v.patchSize == 0);
  require(v.numAttentionHeads >= 1 && v.hiddenSize % v.numAttentionHeads == 0);
  require(v.mlpDim >= 1);
  for (int i : v.globalAttnIndexes) require(i >= 0 && i < v.numHiddenLayers);
  require(c.embeddingSize() == c.gridSize());
  require(c.processor.longestEdge >= 1 && c.processor.longestEdge <= v.imageSize);
}

void checkClipSeg(const clipseg::ClipSegConfig& c) {
  require(!c.extractLayers.empty());
  for (int i : c.extractLayers) require(i >= 0 && i < c.vision.numHiddenLayers);
  require(c.vision.imageSize % c.vision.patchSize == 0);
  require(c.reduceDim % c.decoderNumAttentionHeads == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Dirs dirs;
  Dirs::write(dirs.sam + "/config.json", data, size);
  Dirs::write(dirs.samPre + "/preprocessor_config.json", data, size);
  Dirs::write(dirs.clipseg + "/config.json", data, size);
  try {
    checkSam(sam::loadConfig(dirs.sam));
  } catch (const Error&) {
  }
  try {
    checkSam(sam::loadConfig(dirs.samPre));
  } catch (const Error&) {
  }
  try {
    checkClipSeg(clipseg::loadConfig(dirs.clipseg));
  } catch (const Error&) {
  }
  return 0;
}
