#include "models/clipseg/config.h"

#include <algorithm>

#include "core/json_config.h"

namespace omniseg::clipseg {

namespace {

using config::json;

void check(bool ok, const std::string& msg) {
  if (!ok) throw Error(msg);
}

void readTower(const json& j, TowerConfig& t, const std::string& where) {
  config::readInt(j, "hidden_size", t.hiddenSize, where);
  config::readInt(j, "intermediate_size", t.intermediateSize, where);
  config::readInt(j, "num_hidden_layers", t.numHiddenLayers, where, 1, 256);
  config::readInt(j, "num_attention_heads", t.numAttentionHeads, where);
  config::readPositive(j, "layer_norm_eps", t.layerNormEps, where);
  std::string act = "quick_gelu";
  config::readString(j, "hidden_act", act, where);
  if (act == "quick_gelu")
    t.act = ops::Act::QuickGelu;
  else if (act == "gelu")
    t.act = ops::Act::Gelu;
  else
    throw Error(where + ": hidden_act \"" + act + "\" is not supported (expected \"quick_gelu\" or \"gelu\")");
  check(t.hiddenSize % t.numAttentionHeads == 0,
        where + ": hidden_size must be divisible by num_attention_heads");
}

}  // namespace

ClipSegConfig loadConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  const json root = config::readJson(path, true);
  if (auto it = root.find("model_type"); it != root.end() && it->is_string() && *it != "clipseg")
    throw Error(path + ": model_type " + it->dump() + " is not a CLIPSeg checkpoint (expected \"clipseg\")");

  ClipSegConfig c;
  {
    const std::string where = path + " text_config";
    const json& t = config::section(root, "text_config", path);
    readTower(t, c.text, where);
    config::readInt(t, "vocab_size", c.text.vocabSize, where, 1, 1 << 24);
    // (at least a start and an end token)
    config::readInt(t, "max_position_embeddings", c.text.maxPositionEmbeddings, where, 2, 1 << 16);
    config::readInt(t, "eos_token_id", c.text.eosTokenId, where, 0, 1 << 24);
  }
  {
    const std::string where = path + " vision_config";
    const json& v = config::section(root, "vision_config", path);
    readTower(v, c.vision, where);
    config::readInt(v, "num_channels", c.vision.numChannels, where, 3, 3);
    config::readInt(v, "image_size", c.vision.imageSize, where, 1, 4096);
    config::readInt(v, "patch_size", c.vision.patchSize, where);
    check(c.vision.imageSize % c.vision.patchSize == 0,
          where + ": image_size must be a multiple of patch_size");
  }
  config::readInt(root, "projection_dim", c.projectionDim, path);
  config::readIntList(root, "extract_layers", c.extractLayers, path, 0, c.vision.numHiddenLayers - 1);
  check(!c.extractLayers.empty(), path + ": \"extract_layers\" must not be empty");
  // Also when the key is absent: the default [3, 6, 9] must fit the vision tower too (the vision
  // encoder runs up to the largest entry; found by test/fuzz/config_fuzz.cc).
  for (int l : c.extractLayers)
    check(l < c.vision.numHiddenLayers,
          path + ": \"extract_layers\" entry " + std::to_string(l) + " is not a layer of the vision tower (" +
              std::to_string(c.vision.numHiddenLayers) + " layers)");
  config::readInt(root, "reduce_dim", c.reduceDim, path);
  config::readInt(root, "decoder_num_attention_heads", c.decoderNumAttentionHeads, path);
  config::readInt(root, "decoder_intermediate_size", c.decoderIntermediateSize, path);
  // A conditional_layer past the last decoder layer means no FiLM at all (as in the reference).
  config::readInt(root, "conditional_layer", c.conditionalLayer, path, 0, 1 << 20);
  config::readBool(root, "use_complex_transposed_convolution", c.useComplexTransposedConvolution, path);

  check(c.reduceDim % c.decoderNumAttentionHeads == 0,
        path + ": reduce_dim must be divisible by decoder_num_attention_heads");
  if (c.useComplexTransposedConvolution) {
    check(c.vision.patchSize % 4 == 0 && c.reduceDim % 2 == 0,
          path + ": use_complex_transposed_convolution needs patch_size divisible by 4 and an even reduce_dim");
  }
  return c;
}

}  // namespace omniseg::clipseg
