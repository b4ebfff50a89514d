// CLIPSeg hyperparameters, read from a transformers checkpoint's config.json
// (CLIPSegForImageSegmentation, e.g. CIDAS/clipseg-rd64-refined). Every size the model code uses
// comes from here.
// ref: transformers/models/clipseg/configuration_clipseg.py (defaults where a key is absent)
#pragma once
#include <string>
#include <vector>

#include "ops/ops.h"

namespace omniseg::clipseg {

// One CLIP transformer tower (CLIPSegTextConfig / CLIPSegVisionConfig).
struct TowerConfig {
  int hiddenSize = 512;
  int intermediateSize = 2048;
  int numHiddenLayers = 12;
  int numAttentionHeads = 8;
  double layerNormEps = 1e-5;
  ops::Act act = ops::Act::QuickGelu;  // hidden_act: "quick_gelu" or "gelu"
};

struct TextConfig : TowerConfig {
  int vocabSize = 49408;
  int maxPositionEmbeddings = 77;
  int eosTokenId = 49407;  // 2 (old configs, as CIDAS'): the pooled token is the argmax of the ids
};

struct VisionConfig : TowerConfig {
  VisionConfig() {
    hiddenSize = 768;
    intermediateSize = 3072;
    numAttentionHeads = 12;
  }
  int numChannels = 3;
  int imageSize = 224;
  int patchSize = 32;
  int gridSize() const { return imageSize / patchSize; }  // side of the position-embedding grid
};

struct ClipSegConfig {
  TextConfig text;
  VisionConfig vision;
  int projectionDim = 512;
  std::vector<int> extractLayers{3, 6, 9};
  int reduceDim = 64;
  int decoderNumAttentionHeads = 4;
  int decoderIntermediateSize = 2048;
  int conditionalLayer = 0;
  bool useComplexTransposedConvolution = false;
};

// Reads <dir>/config.json and validates that the sizes are consistent. Throws omniseg::Error
// naming the file and key on any problem.
ClipSegConfig loadConfig(const std::string& dir);

}  // namespace omniseg::clipseg
