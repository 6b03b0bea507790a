#include "trainer/params.h"

#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_util.h"
#include "nlohmann/json.hpp"

namespace sweep::trainer {
namespace {

using Json = nlohmann::json;

struct ParamDoc {
  const char* name;
  const char* default_text;
  const char* help;
};

// The public interface, in documentation order (docs/trainer.md has the long
// form).
const std::vector<ParamDoc>& Docs() {
  static const auto* docs = new std::vector<ParamDoc>{
      {"dataset", "fashion-mnist",
       "fashion-mnist | mnist | idx (IDX files in data_dir) | csv"},
      {"data_dir", "per dataset", "directory with the data files"},
      {"val_fraction", "0.1",
       "share of the training set held out for validation, (0, 0.5]"},
      {"train_limit", "0", "use at most this many training samples (0: all)"},
      {"model", "mlp", "mlp | cnn"},
      {"hidden", "mlp [256,128], cnn [128]",
       "widths of the hidden fully connected layers"},
      {"activation", "relu",
       "relu | gelu | tanh | sigmoid | silu | leaky_relu"},
      {"dropout", "0",
       "dropout after each hidden layer and conv block, [0, 1)"},
      {"batch_norm", "False",
       "batch norm after each hidden layer and convolution"},
      {"conv_channels", "[32,64]",
       "cnn: output channels of each convolution block"},
      {"kernel_size", "3", "cnn: odd convolution kernel size"},
      {"pool", "max", "cnn: max | avg | none (2x2 pooling after each block)"},
      {"optimizer", "sgd", "sgd | adam | adamw"},
      {"lr", "0.01", "peak learning rate, > 0"},
      {"momentum", "0", "sgd momentum, [0, 1)"},
      {"nesterov", "False", "sgd Nesterov momentum (needs momentum > 0)"},
      {"weight_decay", "0 (adamw 0.01)",
       "L2 penalty (sgd, adam) or decoupled decay (adamw), >= 0"},
      {"schedule", "constant", "constant | step | cosine (after warm-up)"},
      {"warmup_epochs", "0",
       "linear warm-up length in epochs (fractions allowed)"},
      {"step_epochs", "epochs/3",
       "step schedule: multiply lr by step_gamma every N epochs"},
      {"step_gamma", "0.1", "step schedule: decay factor, (0, 1]"},
      {"batch_size", "64", "samples per step"},
      {"epochs", "5", "passes over the training split"},
      {"label_smoothing", "0", "cross-entropy label smoothing, [0, 1)"},
      {"augment", "False", "images: True (crop+flip) | crop | flip | False"},
      {"seed", "0",
       "seeds initialization, shuffling, dropout and augmentation"},
      {"threads", "1", "intra-op CPU threads (torch and OpenBLAS)"},
      {"device", "cuda if CUDA_VISIBLE_DEVICES is set and non-empty, else cpu",
       "cpu | cuda | cuda:N; never falls back"},
      {"init_from", "none",
       "checkpoint to start from (file, or directory with last.pt)"},
      {"freeze", "none",
       "layer names kept fixed, e.g. [conv1, conv2] or backbone"},
  };
  return *docs;
}

absl::Status Bad(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("parameter ", key, ": ", what));
}

std::string Shown(const Json& v) { return v.dump(); }

// A value from the command line: JSON when it parses as JSON (numbers, lists,
// quoted strings, true/false), Python's True/False/None as W&B writes them,
// else the plain string.
Json ArgValue(const std::string& text) {
  if (text == "True") return true;
  if (text == "False") return false;
  if (text == "None") return nullptr;
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  return text;
}

absl::StatusOr<double> AsDouble(const std::string& key, const Json& v) {
  if (!v.is_number())
    return Bad(key, absl::StrCat("expected a number, got ", Shown(v)));
  double d = v.get<double>();
  if (!std::isfinite(d)) return Bad(key, "expected a finite number");
  return d;
}

absl::StatusOr<int64_t> AsInt(const std::string& key, const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      return static_cast<int64_t>(d);
    }
  }
  return Bad(key, absl::StrCat("expected an integer, got ", Shown(v)));
}

absl::StatusOr<bool> AsBool(const std::string& key, const Json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer() &&
      (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) {
    return v.get<int64_t>() == 1;
  }
  if (v.is_string()) {
    std::string s = absl::AsciiStrToLower(v.get<std::string>());
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return Bad(key, absl::StrCat("expected True or False, got ", Shown(v)));
}

absl::StatusOr<std::string> AsString(const std::string& key, const Json& v) {
  if (!v.is_string())
    return Bad(key, absl::StrCat("expected a string, got ", Shown(v)));
  return v.get<std::string>();
}

absl::StatusOr<std::string> AsChoice(const std::string& key, const Json& v,
                                     const std::vector<std::string>& choices) {
  SWEEP_ASSIGN_OR_RETURN(std::string s, AsString(key, v));
  for (const auto& c : choices) {
    if (s == c) return s;
  }
  return Bad(key, absl::StrCat("expected one of ", absl::StrJoin(choices, ", "),
                               ", got ", Shown(v)));
}

// A list of positive integers: a JSON list, one integer, or "128,64" /
// "128-64".
absl::StatusOr<std::vector<int64_t>> AsWidths(const std::string& key,
                                              const Json& v) {
  std::vector<int64_t> out;
  if (v.is_array()) {
    for (const Json& item : v) {
      SWEEP_ASSIGN_OR_RETURN(int64_t n, AsInt(key, item));
      out.push_back(n);
    }
  } else if (v.is_number()) {
    SWEEP_ASSIGN_OR_RETURN(int64_t n, AsInt(key, v));
    out.push_back(n);
  } else if (v.is_string()) {
    for (absl::string_view part :
         absl::StrSplit(v.get<std::string>(), absl::ByAnyChar(",-x "),
                        absl::SkipEmpty())) {
      int64_t n;
      if (!absl::SimpleAtoi(part, &n)) {
        return Bad(key, absl::StrCat(
                            "expected a list of integers like [128, 64], got ",
                            Shown(v)));
      }
      out.push_back(n);
    }
  } else {
    return Bad(key,
               absl::StrCat("expected a list of integers like [128, 64], got ",
                            Shown(v)));
  }
  for (int64_t n : out) {
    if (n < 1 || n > 65536) {
      return Bad(key,
                 absl::StrCat("each width must be in [1, 65536], got ", n));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> AsNames(const std::string& key,
                                                 const Json& v) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const Json& item : v) {
      SWEEP_ASSIGN_OR_RETURN(std::string s, AsString(key, item));
      out.push_back(s);
    }
  } else if (v.is_string()) {
    for (absl::string_view part : absl::StrSplit(
             v.get<std::string>(), absl::ByAnyChar(", "), absl::SkipEmpty())) {
      out.emplace_back(part);
    }
  } else {
    return Bad(key,
               absl::StrCat("expected a layer name or a list of names, got ",
                            Shown(v)));
  }
  return out;
}

absl::Status InRange(const std::string& key, double v, double lo, bool lo_open,
                     double hi, bool hi_open) {
  bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (ok) return absl::OkStatus();
  return Bad(key, absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi,
                               hi_open ? ")" : "]", ", got ", v));
}

// The closest known name, for "did you mean".
std::string Nearest(const std::string& name) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                           prev[j - 1] + (a[i - 1] != b[j - 1])});
      }
      prev.swap(cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t best_d = 3;
  for (const auto& n : ParamNames()) {
    size_t d = distance(name, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best;
}

absl::Status Apply(const std::map<std::string, Json>& raw, TrainerParams* p) {
  bool hidden_set = false, channels_set = false;
  for (const auto& [key, v] : raw) {
    if (v.is_null()) continue;  // None: the default
    if (v.is_object()) {
      return Bad(key,
                 "nested parameter blocks are not supported; use flat keys");
    }
    if (key == "dataset") {
      SWEEP_ASSIGN_OR_RETURN(
          p->dataset,
          AsChoice(key, v, {"fashion-mnist", "mnist", "idx", "csv"}));
    } else if (key == "data_dir") {
      SWEEP_ASSIGN_OR_RETURN(p->data_dir, AsString(key, v));
    } else if (key == "val_fraction") {
      SWEEP_ASSIGN_OR_RETURN(p->val_fraction, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->val_fraction, 0, true, 0.5, false));
    } else if (key == "train_limit") {
      SWEEP_ASSIGN_OR_RETURN(p->train_limit, AsInt(key, v));
      SWEEP_RETURN_IF_ERROR(
          InRange(key, p->train_limit, 0, false, 1e12, false));
    } else if (key == "model") {
      SWEEP_ASSIGN_OR_RETURN(p->model, AsChoice(key, v, {"mlp", "cnn"}));
    } else if (key == "hidden") {
      SWEEP_ASSIGN_OR_RETURN(p->hidden, AsWidths(key, v));
      hidden_set = true;
    } else if (key == "activation") {
      SWEEP_ASSIGN_OR_RETURN(
          p->activation,
          AsChoice(key, v,
                   {"relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu"}));
    } else if (key == "dropout") {
      SWEEP_ASSIGN_OR_RETURN(p->dropout, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->dropout, 0, false, 1, true));
    } else if (key == "batch_norm") {
      SWEEP_ASSIGN_OR_RETURN(p->batch_norm, AsBool(key, v));
    } else if (key == "conv_channels") {
      SWEEP_ASSIGN_OR_RETURN(p->conv_channels, AsWidths(key, v));
      channels_set = true;
    } else if (key == "kernel_size") {
      SWEEP_ASSIGN_OR_RETURN(p->kernel_size, AsInt(key, v));
      if (p->kernel_size < 1 || p->kernel_size > 15 ||
          p->kernel_size % 2 == 0) {
        return Bad(key, absl::StrCat("must be odd and in [1, 15], got ",
                                     p->kernel_size));
      }
    } else if (key == "pool") {
      SWEEP_ASSIGN_OR_RETURN(p->pool, AsChoice(key, v, {"max", "avg", "none"}));
    } else if (key == "optimizer") {
      SWEEP_ASSIGN_OR_RETURN(p->optimizer,
                             AsChoice(key, v, {"sgd", "adam", "adamw"}));
    } else if (key == "lr") {
      SWEEP_ASSIGN_OR_RETURN(p->lr, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->lr, 0, true, 100, false));
    } else if (key == "momentum") {
      SWEEP_ASSIGN_OR_RETURN(p->momentum, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->momentum, 0, false, 1, true));
    } else if (key == "nesterov") {
      SWEEP_ASSIGN_OR_RETURN(p->nesterov, AsBool(key, v));
    } else if (key == "weight_decay") {
      SWEEP_ASSIGN_OR_RETURN(p->weight_decay, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->weight_decay, 0, false, 10, false));
    } else if (key == "schedule") {
      SWEEP_ASSIGN_OR_RETURN(p->schedule,
                             AsChoice(key, v, {"constant", "step", "cosine"}));
    } else if (key == "warmup_epochs") {
      SWEEP_ASSIGN_OR_RETURN(p->warmup_epochs, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(
          InRange(key, p->warmup_epochs, 0, false, 1e6, false));
    } else if (key == "step_epochs") {
      SWEEP_ASSIGN_OR_RETURN(p->step_epochs, AsInt(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->step_epochs, 1, false, 1e6, false));
    } else if (key == "step_gamma") {
      SWEEP_ASSIGN_OR_RETURN(p->step_gamma, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->step_gamma, 0, true, 1, false));
    } else if (key == "batch_size") {
      SWEEP_ASSIGN_OR_RETURN(p->batch_size, AsInt(key, v));
      SWEEP_RETURN_IF_ERROR(
          InRange(key, p->batch_size, 1, false, 1 << 20, false));
    } else if (key == "epochs") {
      SWEEP_ASSIGN_OR_RETURN(p->epochs, AsInt(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->epochs, 1, false, 100000, false));
    } else if (key == "label_smoothing") {
      SWEEP_ASSIGN_OR_RETURN(p->label_smoothing, AsDouble(key, v));
      SWEEP_RETURN_IF_ERROR(
          InRange(key, p->label_smoothing, 0, false, 1, true));
    } else if (key == "augment") {
      if (v.is_boolean() || v.is_number()) {
        SWEEP_ASSIGN_OR_RETURN(bool on, AsBool(key, v));
        p->augment_crop = p->augment_flip = on;
      } else {
        SWEEP_ASSIGN_OR_RETURN(std::vector<std::string> parts, AsNames(key, v));
        if (parts.size() == 1) parts = absl::StrSplit(parts[0], '+');
        p->augment_crop = p->augment_flip = false;
        for (const auto& part : parts) {
          std::string s = absl::AsciiStrToLower(part);
          if (s == "crop") {
            p->augment_crop = true;
          } else if (s == "flip") {
            p->augment_flip = true;
          } else if (s == "true") {
            p->augment_crop = p->augment_flip = true;
          } else if (s != "false" && s != "none") {
            return Bad(
                key, absl::StrCat(
                         "expected True, False, crop, flip or crop+flip, got ",
                         Shown(v)));
          }
        }
      }
    } else if (key == "seed") {
      SWEEP_ASSIGN_OR_RETURN(p->seed, AsInt(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->seed, 0, false, 9e15, false));
    } else if (key == "threads") {
      SWEEP_ASSIGN_OR_RETURN(p->threads, AsInt(key, v));
      SWEEP_RETURN_IF_ERROR(InRange(key, p->threads, 1, false, 1024, false));
    } else if (key == "device") {
      SWEEP_ASSIGN_OR_RETURN(std::string d, AsString(key, v));
      int64_t index;
      if (d != "cpu" && d != "cuda" &&
          !(absl::StartsWith(d, "cuda:") &&
            absl::SimpleAtoi(d.substr(5), &index) && index >= 0)) {
        return Bad(
            key, absl::StrCat("expected cpu, cuda or cuda:N, got ", Shown(v)));
      }
      p->device = d;
    } else if (key == "init_from") {
      SWEEP_ASSIGN_OR_RETURN(p->init_from, AsString(key, v));
    } else if (key == "freeze") {
      if (v.is_boolean() && !v.get<bool>()) continue;
      SWEEP_ASSIGN_OR_RETURN(p->freeze, AsNames(key, v));
    } else {
      std::string near = Nearest(key);
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown parameter ", key,
          near.empty() ? "" : absl::StrCat(" (did you mean ", near, "?)"),
          "; known: ", absl::StrJoin(ParamNames(), ", ")));
    }
  }
  if (!hidden_set) {
    p->hidden = p->model == "cnn" ? std::vector<int64_t>{128}
                                  : std::vector<int64_t>{256, 128};
  }
  if (!channels_set) p->conv_channels = {32, 64};
  return absl::OkStatus();
}

absl::Status CheckCombinations(TrainerParams& p,
                               const std::map<std::string, Json>& raw) {
  auto given = [&](const char* k) {
    auto it = raw.find(k);
    return it != raw.end() && !it->second.is_null();
  };
  auto ignored = [&](const char* k, const std::string& why) {
    if (given(k))
      p.warnings.push_back(absl::StrCat("parameter ", k, " is ignored: ", why));
  };
  if (p.optimizer != "sgd") {
    ignored("momentum",
            absl::StrCat("it applies to optimizer sgd, not ", p.optimizer));
    ignored("nesterov",
            absl::StrCat("it applies to optimizer sgd, not ", p.optimizer));
    p.momentum = 0;
    p.nesterov = false;
  }
  if (p.nesterov && p.momentum <= 0)
    return Bad("nesterov", "needs momentum > 0");
  if (p.model == "mlp") {
    for (const char* k : {"conv_channels", "kernel_size", "pool"}) {
      ignored(k, "it applies to model cnn, not mlp");
    }
  }
  if (p.schedule != "step") {
    for (const char* k : {"step_epochs", "step_gamma"}) {
      ignored(k, absl::StrCat("it applies to schedule step, not ", p.schedule));
    }
  }
  if (p.model == "cnn" && p.dataset == "csv") {
    return Bad(
        "model",
        "cnn needs image data (an IDX dataset); csv rows are flat features");
  }
  if ((p.augment_crop || p.augment_flip) && p.dataset == "csv") {
    return Bad("augment", "applies to image datasets only, not csv");
  }
  if (p.model == "cnn" && p.conv_channels.empty()) {
    return Bad("conv_channels", "cnn needs at least one convolution block");
  }
  if (p.model == "cnn" && p.conv_channels.size() > 4 && p.pool != "none") {
    return Bad("conv_channels", "at most 4 pooled blocks fit a 28x28 image");
  }
  if (p.warmup_epochs > static_cast<double>(p.epochs)) {
    return Bad("warmup_epochs",
               absl::StrCat("must not exceed epochs (", p.epochs, ")"));
  }
  if ((p.dataset == "csv" || p.dataset == "idx") && p.data_dir.empty()) {
    return Bad("data_dir",
               absl::StrCat("is required with dataset ", p.dataset));
  }
  if (p.init_from.empty() && !p.freeze.empty()) {
    return Bad(
        "freeze",
        "needs init_from (freezing freshly initialized layers is a mistake)");
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& ParamNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>;
    for (const auto& d : Docs()) v->push_back(d.name);
    return v;
  }();
  return *names;
}

absl::StatusOr<TrainerParams> ParseParams(
    const std::string& sweep_params_json, const std::vector<std::string>& args,
    std::optional<std::string> cuda_visible_devices) {
  std::map<std::string, Json> raw;
  if (!absl::StripAsciiWhitespace(sweep_params_json).empty()) {
    Json j =
        Json::parse(sweep_params_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(
          "SWEEP_PARAMS is not a JSON object (expected e.g. {\"lr\": 0.01})");
    }
    for (auto it = j.begin(); it != j.end(); ++it) raw[it.key()] = it.value();
  }
  for (const std::string& arg : args) {
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", arg, "': expected --key=value"));
    }
    size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      raw[arg.substr(2)] =
          true;  // a bare boolean flag, as ${args_no_boolean_flags} writes
    } else {
      raw[arg.substr(2, eq - 2)] = ArgValue(arg.substr(eq + 1));
    }
  }

  TrainerParams p;
  SWEEP_RETURN_IF_ERROR(Apply(raw, &p));
  SWEEP_RETURN_IF_ERROR(CheckCombinations(p, raw));
  if (p.data_dir.empty()) {
    p.data_dir = p.dataset == "mnist" ? "/usr/share/datasets/mnist"
                                      : "/usr/share/datasets/fashion-mnist";
  }
  if (p.optimizer == "adamw" && raw.count("weight_decay") == 0) {
    p.weight_decay = 0.01;  // PyTorch's AdamW default
  }
  if (p.schedule == "step" && p.step_epochs == 0) {
    p.step_epochs = std::max<int64_t>(1, p.epochs / 3);
  }
  if (p.device.empty()) {
    p.device =
        cuda_visible_devices && !cuda_visible_devices->empty() ? "cuda" : "cpu";
  }
  Json all = Json::object();
  for (const auto& [k, v] : raw) all[k] = v;
  p.json = all.dump();
  return p;
}

std::string ParamsHelp() {
  std::string out =
      "usage: sweep-train [--key=value ...]   (parameters also come from "
      "SWEEP_PARAMS)\n"
      "       sweep-train --estimate-memory [--key=value ...]   (the memory "
      "estimate as one JSON line; no data loaded)\n"
      "       sweep-train doctor [--json] [--json-file=PATH] [--cpu-size=N] "
      "[--gpu-size=N] [--device=N] [--threads=N]   (check CUDA, time CPU vs "
      "GPU)\n"
      "       sweep-train --version | --help\n\n";
  for (const auto& d : Docs()) {
    absl::StrAppend(
        &out, "  --", d.name,
        std::string(std::max<int>(1, 17 - static_cast<int>(strlen(d.name))),
                    ' '),
        d.help, " (default: ", d.default_text, ")\n");
  }
  absl::StrAppend(
      &out,
      "\nexit codes: 0 done, 1 internal error, 2 bad parameters or data, "
      "3 CUDA asked for but not available, 4 training diverged (loss not "
      "finite), "
      "5 out of memory, 143 stopped by SIGTERM\n");
  return out;
}

}  // namespace sweep::trainer
