#include "models/sam/config.h"

#include "core/error.h"
#include "core/json_config.h"

namespace omniseg::sam {

namespace {

using config::json;
using config::readBool;
using config::readDouble;
using config::readInt;
using config::readPositive;
using config::readJson;
using config::section;

void requireAct(const json& j, const char* want, const std::string& where) {
  auto it = j.find("hidden_act");
  if (it == j.end() || it->is_null()) return;
  if (it->is_string() && it->get<std::string>() == want) return;
  // A non-string is named by its type, never dumped: dump() recurses once per nesting level, and
  // a hidden_act nested a million levels deep (a 2 MB config.json) overflowed the stack.
  const std::string got = it->is_string() ? it->dump() : std::string("of type ") + it->type_name();
  throw Error(where + ": hidden_act " + got + " is not supported (expected \"" + want + "\")");
}

// The largest model input side read from a config (SAM's is 1024): the image-side buffers grow with
// its square (at 65536 a load took 8 GB before failing).
constexpr int kMaxImageSize = 8192;

void check(bool ok, const std::string& msg) {
  if (!ok) throw Error(msg);
}

}  // namespace

SamConfig loadConfig(const std::string& dir) {
  bool found = false;
  const std::string path = dir + "/config.json";
  const json root = readJson(path, true, &found);
  if (auto it = root.find("model_type"); it != root.end() && it->is_string() && *it != "sam")
    throw Error(path + ": model_type " + it->dump() + " is not a SAM checkpoint (expected \"sam\")");

  SamConfig c;
  {
    const std::string where = path + " vision_config";
    const json& v = section(root, "vision_config", path);
    auto& vc = c.vision;
    readInt(v, "hidden_size", vc.hiddenSize, where);
    readInt(v, "output_channels", vc.outputChannels, where);
    readInt(v, "num_hidden_layers", vc.numHiddenLayers, where, 1, 256);
    readInt(v, "num_attention_heads", vc.numAttentionHeads, where);
    readInt(v, "num_channels", vc.numChannels, where, 3, 3);
    readInt(v, "image_size", vc.imageSize, where, 1, kMaxImageSize);
    readInt(v, "patch_size", vc.patchSize, where);
    readPositive(v, "layer_norm_eps", vc.layerNormEps, where);
    readBool(v, "qkv_bias", vc.qkvBias, where);
    double mlpRatio = 4.0;
    readDouble(v, "mlp_ratio", mlpRatio, where);
    // Checked before the conversion to int (out of range, it is undefined behaviour).
    check(vc.hiddenSize * mlpRatio >= 1 && vc.hiddenSize * mlpRatio <= (1 << 20),
          where + ": hidden_size × \"mlp_ratio\" must be in [1, 1048576]");
    vc.mlpDim = static_cast<int>(vc.hiddenSize * mlpRatio);
    readInt(v, "mlp_dim", vc.mlpDim, where);
    readBool(v, "use_abs_pos", vc.useAbsPos, where);
    readBool(v, "use_rel_pos", vc.useRelPos, where);
    readInt(v, "window_size", vc.windowSize, where, 0);
    readInt(v, "num_pos_feats", vc.numPosFeats, where);
    if (auto it = v.find("global_attn_indexes"); it != v.end() && !it->is_null()) {
      check(it->is_array(), where + ": \"global_attn_indexes\" must be a list of integers");
      vc.globalAttnIndexes.clear();
      for (const auto& e : *it) {
        // Read as 64-bit so that 2^32 + 1 is not taken for layer 1; the range is checked below.
        check(e.is_number_integer() && e.get<int64_t>() >= -1 && e.get<int64_t>() <= (1 << 20),
              where + ": \"global_attn_indexes\" must be a list of integers");
        vc.globalAttnIndexes.push_back(static_cast<int>(e.get<int64_t>()));
      }
    }
    requireAct(v, "gelu", where);
  }
  {
    const std::string where = path + " prompt_encoder_config";
    const json& p = section(root, "prompt_encoder_config", path);
    auto& pc = c.prompt;
    readInt(p, "hidden_size", pc.hiddenSize, where);
    readInt(p, "image_size", pc.imageSize, where);
    readInt(p, "patch_size", pc.patchSize, where);
    readInt(p, "mask_input_channels", pc.maskInputChannels, where);
    readInt(p, "num_point_embeddings", pc.numPointEmbeddings, where, 4, 4);
    readPositive(p, "layer_norm_eps", pc.layerNormEps, where);
    requireAct(p, "gelu", where);
  }
  {
    const std::string where = path + " mask_decoder_config";
    const json& m = section(root, "mask_decoder_config", path);
    auto& mc = c.decoder;
    readInt(m, "hidden_size", mc.hiddenSize, where);
    readInt(m, "mlp_dim", mc.mlpDim, where);
    readInt(m, "num_hidden_layers", mc.numHiddenLayers, where, 1, 64);
    readInt(m, "num_attention_heads", mc.numAttentionHeads, where);
    readInt(m, "attention_downsample_rate", mc.attentionDownsampleRate, where);
    readInt(m, "num_multimask_outputs", mc.numMultimaskOutputs, where, 1, 64);
    readInt(m, "iou_head_depth", mc.iouHeadDepth, where, 2, 64);
    readInt(m, "iou_head_hidden_dim", mc.iouHeadHiddenDim, where);
    readPositive(m, "layer_norm_eps", mc.layerNormEps, where);
    requireAct(m, "relu", where);
  }
  {
    const std::string ppath = dir + "/preprocessor_config.json";
    const json pp = readJson(ppath, false, &found);
    auto& pc = c.processor;
    // Without a processor file, the processor of the published checkpoints is implied, with
    // sizes following the model's input size.
    pc.longestEdge = pc.padHeight = pc.padWidth = c.vision.imageSize;
    if (found) {
      // The processor resizes by the longest edge only (transformers' SamImageProcessor refuses
      // any other "size"), then pads to height x width ("pad_size": N there means N x N).
      // ref: transformers/models/sam/image_processing_sam.py (SamImageProcessor.resize, pad_image)
      if (auto it = pp.find("size"); it != pp.end() && !it->is_null()) {
        check(it->is_object() && it->contains("longest_edge"),
              ppath + ": size must be {\"longest_edge\": N}");
        readInt(*it, "longest_edge", pc.longestEdge, ppath + " size");
      }
      if (auto it = pp.find("pad_size"); it != pp.end() && !it->is_null()) {
        const json pad = it->is_number_integer() ? json{{"height", *it}, {"width", *it}} : *it;
        check(pad.is_object() && pad.contains("height") && pad.contains("width"),
              ppath + ": pad_size must be {\"height\": H, \"width\": W} or N");
        readInt(pad, "height", pc.padHeight, ppath + " pad_size");
        readInt(pad, "width", pc.padWidth, ppath + " pad_size");
      }
      readDouble(pp, "rescale_factor", pc.rescaleFactor, ppath);
      for (auto [key, dst] : {std::pair<const char*, std::array<double, 3>*>{"image_mean", &pc.mean},
                              {"image_std", &pc.std}}) {
        auto it = pp.find(key);
        if (it == pp.end() || it->is_null()) continue;
        check(it->is_array() && it->size() == 3, ppath + ": \"" + key + "\" must be a list of 3 numbers");
        const bool positive = dst == &pc.std;  // (the pixels are divided by it)
        for (int i = 0; i < 3; ++i) {
          check((*it)[i].is_number() && (!positive || (*it)[i].get<double>() > 0),
                ppath + ": \"" + key + "\" must be a list of 3 " + (positive ? "positive " : "") + "numbers");
          (*dst)[i] = (*it)[i].get<double>();
        }
      }
      if (auto it = pp.find("resample"); it != pp.end() && !it->is_null())
        check(it->is_number_integer() && it->get<int64_t>() == 2,
              ppath + ": only bilinear resampling (resample = 2) is supported");
      for (const char* flag : {"do_resize", "do_rescale", "do_normalize", "do_pad"}) {
        bool v = true;
        readBool(pp, flag, v, ppath);
        check(v, ppath + ": \"" + flag + "\" = false is not supported");
      }
    }
  }

  // Consistency: the shapes the model code relies on.
  const auto& v = c.vision;
  check(v.imageSize % v.patchSize == 0, path + ": vision image_size must be a multiple of patch_size");
  check(v.hiddenSize % v.numAttentionHeads == 0,
        path + ": vision hidden_size must be divisible by num_attention_heads");
  for (int i : v.globalAttnIndexes)
    check(i >= 0 && i < v.numHiddenLayers, path + ": global_attn_indexes entry " + std::to_string(i) +
                                               " is not a layer index");
  check(c.prompt.hiddenSize == v.outputChannels && c.decoder.hiddenSize == v.outputChannels,
        path + ": prompt encoder and mask decoder hidden_size must equal vision output_channels");
  check(2 * v.numPosFeats == c.prompt.hiddenSize,
        path + ": vision num_pos_feats must be half the prompt encoder hidden_size");
  check(c.embeddingSize() == c.gridSize(),
        path + ": prompt encoder image_size/patch_size must match the vision encoder's grid");
  check(c.prompt.maskInputChannels % 4 == 0, path + ": mask_input_channels must be a multiple of 4");
  check(c.decoder.hiddenSize % 8 == 0, path + ": mask decoder hidden_size must be a multiple of 8");
  const int internal = c.decoder.hiddenSize / c.decoder.attentionDownsampleRate;
  check(internal % c.decoder.numAttentionHeads == 0 &&
            c.decoder.hiddenSize % c.decoder.numAttentionHeads == 0,
        path + ": mask decoder num_attention_heads must divide its attention width");
  const auto& pc = c.processor;
  check(pc.padHeight == v.imageSize && pc.padWidth == v.imageSize,
        dir + "/preprocessor_config.json: pad_size must equal the model's image_size (" +
            std::to_string(v.imageSize) + ")");
  check(pc.longestEdge >= 1 && pc.longestEdge <= v.imageSize,
        dir + "/preprocessor_config.json: size.longest_edge must be in [1, image_size]");
  return c;
}

}  // namespace omniseg::sam
