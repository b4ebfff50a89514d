// SAM hyperparameters, read from a transformers checkpoint's config.json (and the processor's
// preprocessor_config.json). Every size the model code uses comes from here.
// ref: transformers/models/sam/configuration_sam.py (defaults where a key is absent)
#pragma once
#include <array>
#include <string>
#include <vector>

namespace omniseg::sam {

struct VisionConfig {
  int hiddenSize = 768;
  int outputChannels = 256;
  int numHiddenLayers = 12;
  int numAttentionHeads = 12;
  int numChannels = 3;
  int imageSize = 1024;
  int patchSize = 16;
  double layerNormEps = 1e-6;
  bool qkvBias = true;
  int mlpDim = 3072;  // hidden_size * mlp_ratio when absent
  bool useAbsPos = true;
  bool useRelPos = true;
  int windowSize = 14;
  std::vector<int> globalAttnIndexes{2, 5, 8, 11};
  int numPosFeats = 128;
};

struct PromptEncoderConfig {
  int hiddenSize = 256;
  int imageSize = 1024;
  int patchSize = 16;
  int maskInputChannels = 16;
  int numPointEmbeddings = 4;
  double layerNormEps = 1e-6;
};

struct MaskDecoderConfig {
  int hiddenSize = 256;
  int mlpDim = 2048;
  int numHiddenLayers = 2;
  int numAttentionHeads = 8;
  int attentionDownsampleRate = 2;
  int numMultimaskOutputs = 3;
  int iouHeadDepth = 3;
  int iouHeadHiddenDim = 256;
  double layerNormEps = 1e-6;
};

// SamImageProcessor settings (preprocessor_config.json; defaults = facebook/sam-vit-*).
struct ProcessorConfig {
  int longestEdge = 1024;
  int padHeight = 1024, padWidth = 1024;
  double rescaleFactor = 1.0 / 255.0;
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
};

struct SamConfig {
  VisionConfig vision;
  PromptEncoderConfig prompt;
  MaskDecoderConfig decoder;
  ProcessorConfig processor;

  int gridSize() const { return vision.imageSize / vision.patchSize; }     // 64
  int embeddingSize() const { return prompt.imageSize / prompt.patchSize; }  // 64
  int lowResSize() const { return 4 * embeddingSize(); }                     // 256
};

// Reads <dir>/config.json and, if present, <dir>/preprocessor_config.json; validates that the
// sizes are consistent. Throws omniseg::Error naming the file and key on any problem.
SamConfig loadConfig(const std::string& dir);

}  // namespace omniseg::sam
