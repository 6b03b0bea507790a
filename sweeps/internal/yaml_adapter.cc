#include "sweeps/internal/yaml_adapter.h"

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sweeps/internal/errors.h"
#include "yaml-cpp/yaml.h"

namespace sweep::spec::internal {
namespace {

Position PositionOf(const YAML::Mark& mark) {
  if (mark.is_null()) return Position{};
  return Position{mark.line + 1, mark.column + 1};
}

// Copies a yaml-cpp tree into YamlNode values. yaml-cpp may throw from any
// accessor; ParseYaml catches around the whole conversion.
class Converter {
 public:
  explicit Converter(absl::string_view file_name) : file_name_(file_name) {}

  absl::Status Convert(const YAML::Node& in, absl::string_view path, int depth,
                       YamlNode& out) {
    if (++node_count_ > kMaxNodes) {
      return SpecError(file_name_, PositionOf(in.Mark()), path,
                       absl::StrCat("the spec has more than ", kMaxNodes,
                                    " YAML nodes (counting alias expansions)"));
    }
    if (depth > kMaxDepth) {
      return SpecError(
          file_name_, PositionOf(in.Mark()), path,
          absl::StrCat("nested deeper than ", kMaxDepth, " levels"));
    }
    out.position = PositionOf(in.Mark());
    out.tag = in.Tag();
    if (!in.IsSequence() && !in.IsMap()) {
      return ConvertContent(in, path, depth, out);
    }
    for (const YAML::Node& ancestor : ancestors_) {
      if (ancestor.is(in)) {
        return SpecError(file_name_, out.position, path,
                         "an alias that refers to a node containing it");
      }
    }
    ancestors_.push_back(in);
    absl::Status status = ConvertContent(in, path, depth, out);
    ancestors_.pop_back();
    return status;
  }

 private:
  absl::Status ConvertContent(const YAML::Node& in, absl::string_view path,
                              int depth, YamlNode& out) {
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out.kind = YamlNode::Kind::kNull;
        return absl::OkStatus();
      case YAML::NodeType::Scalar:
        out.kind = YamlNode::Kind::kScalar;
        out.text = in.Scalar();
        return absl::OkStatus();
      case YAML::NodeType::Sequence: {
        out.kind = YamlNode::Kind::kSequence;
        out.items.reserve(in.size());
        for (const YAML::Node& item : in) {
          const std::string item_path =
              absl::StrCat(path, "[", out.items.size(), "]");
          if (absl::Status s =
                  Convert(item, item_path, depth + 1, out.items.emplace_back());
              !s.ok()) {
            return s;
          }
        }
        return absl::OkStatus();
      }
      case YAML::NodeType::Map: {
        out.kind = YamlNode::Kind::kMap;
        std::unordered_map<std::string, int> key_lines;
        for (auto it = in.begin(); it != in.end(); ++it) {
          if (absl::Status s = ConvertEntry(it->first, it->second, path, depth,
                                            key_lines, out);
              !s.ok()) {
            return s;
          }
        }
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  // Appends key: value to `map`; `key_lines` holds the line of each key so far.
  absl::Status ConvertEntry(const YAML::Node& key, const YAML::Node& value,
                            absl::string_view path, int depth,
                            std::unordered_map<std::string, int>& key_lines,
                            YamlNode& map) {
    const Position key_position = PositionOf(key.Mark());
    if (!key.IsScalar()) {
      return SpecError(file_name_, key_position, path,
                       "expected a plain string as a key");
    }
    const std::string& name = key.Scalar();
    const std::string entry_path = JoinPath(path, name);
    if (const auto [first, inserted] =
            key_lines.emplace(name, key_position.line);
        !inserted) {
      return SpecError(file_name_, key_position, entry_path,
                       absl::StrCat("duplicate key; the first \"", name,
                                    "\" is at line ", first->second));
    }
    YamlEntry& entry = map.entries.emplace_back();
    entry.key = name;
    entry.key_position = key_position;
    if (absl::Status s = Convert(value, entry_path, depth + 1, entry.value);
        !s.ok()) {
      return s;
    }
    if (entry.value.kind == YamlNode::Kind::kNull && value.Tag().empty()) {
      // An empty value's mark is the next token's; the key is where it is.
      entry.value.position = key_position;
    }
    return absl::OkStatus();
  }

  absl::string_view file_name_;
  int node_count_ = 0;
  std::vector<YAML::Node> ancestors_;  // the collections being converted
};

}  // namespace

const YamlEntry* YamlNode::Find(absl::string_view key) const {
  for (const YamlEntry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

absl::StatusOr<YamlNode> ParseYaml(absl::string_view text,
                                   absl::string_view file_name) {
  YamlNode root;
  root.position = Position{1, 1};
  try {
    const std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    if (documents.empty()) return root;
    if (documents.size() > 1) {
      return SpecError(file_name, PositionOf(documents[1].Mark()), "",
                       absl::StrCat("expected one YAML document, found ",
                                    documents.size(), " (separated by ---)"));
    }
    Converter converter(file_name);
    if (absl::Status s = converter.Convert(documents[0], "", 0, root);
        !s.ok()) {
      return s;
    }
  } catch (const YAML::Exception& e) {
    return SpecError(file_name, PositionOf(e.mark), "",
                     absl::StrCat("invalid YAML: ", e.msg));
  }
  return root;
}

}  // namespace sweep::spec::internal
