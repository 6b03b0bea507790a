#include "sweeps/internal/yaml_adapter.h"

#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_util.h"
#include "sweeps/internal/errors.h"
#include "sweeps/internal/values.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace sweep::spec::internal {
namespace {

Position PositionOf(const YAML::Mark& mark) {
  if (mark.is_null()) return Position{};
  return Position{mark.line + 1, mark.column + 1};
}

// Where byte `offset` of `text` is, 1-based, columns counted in bytes.
Position PositionOfOffset(absl::string_view text, size_t offset) {
  Position p{1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

// Every key and scalar of a spec ends up in JSON (parameters, the database)
// or in a trial's argv, so it must be valid UTF-8 (escapes such as "\udc80"
// can make it invalid after parsing) and free of NUL characters (which
// execve would cut an argument at). Returns what is wrong with `text`, or "".
std::string CheckText(absl::string_view text) {
  if (const size_t bad = FirstInvalidUtf8(text);
      bad != absl::string_view::npos) {
    return absl::StrCat(
        "is not valid UTF-8 (byte 0x",
        absl::Hex(static_cast<unsigned char>(text[bad]), absl::kZeroPad2),
        " at offset ", bad,
        "); escapes such as \\udc80 must form whole characters");
  }
  if (text.find('\0') != absl::string_view::npos) {
    return "contains a NUL character (\\0), which a command line cannot hold";
  }
  return "";
}

// Sees the events of one document: where it starts and whether it is anything
// but a lone null.
class DocumentProbe final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {
    first_ = YAML::Mark::null_mark();
    events_ = 0;
    only_null_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Saw(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Saw(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Saw(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Saw(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Saw(mark, false);
  }
  void OnMapEnd() override {}

  const YAML::Mark& first() const { return first_; }
  bool only_null() const { return only_null_; }

 private:
  void Saw(const YAML::Mark& mark, bool is_null) {
    if (events_++ == 0) first_ = mark;
    only_null_ = only_null_ && is_null && events_ == 1;
  }

  YAML::Mark first_ = YAML::Mark::null_mark();
  int events_ = 0;
  bool only_null_ = true;
};

// Returns how many documents `text` holds, counting up to kMaxDocuments. yaml-cpp 0.7
// (Debian 12) never ends YAML::LoadAll on a stray ',' (",", "- a\n, b": its
// issue #1040): each call makes an empty document at the same place without
// consuming anything. That is reported as a syntax error here, and at most
// kMaxDocuments documents are looked at, so this always ends.
absl::StatusOr<int> CountDocuments(const std::string& text,
                                   absl::string_view file_name) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentProbe probe;
  int documents = 0;
  std::optional<YAML::Mark> last_empty;
  constexpr int kMaxDocuments = 100;
  while (documents < kMaxDocuments && parser.HandleNextDocument(probe)) {
    if (probe.only_null()) {
      const YAML::Mark& at = probe.first();
      if (last_empty && last_empty->pos == at.pos) {
        return SpecError(file_name, PositionOf(at), "",
                         "invalid YAML: unexpected character here (a ',' "
                         "outside [...] or {...}?)");
      }
      last_empty = at;
    }
    ++documents;
  }
  return documents;
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
        if (std::string problem = CheckText(out.text); !problem.empty()) {
          return SpecError(file_name_, out.position, path,
                           absl::StrCat("the value ", problem));
        }
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
    if (std::string problem = CheckText(name); !problem.empty()) {
      return SpecError(file_name_, key_position, path,
                       absl::StrCat("a key ", problem));
    }
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
  if (const size_t bad = FirstInvalidUtf8(text);
      bad != absl::string_view::npos) {
    return SpecError(
        file_name, PositionOfOffset(text, bad), "",
        absl::StrCat(
            "the file is not UTF-8 text (byte 0x",
            absl::Hex(static_cast<unsigned char>(text[bad]), absl::kZeroPad2),
            "); save it as UTF-8"));
  }
  try {
    // Not YAML::LoadAll, which may never return (see CountDocuments).
    const std::string yaml(text);
    SWEEP_ASSIGN_OR_RETURN(const int documents, CountDocuments(yaml, file_name));
    if (documents == 0) return root;
    if (documents > 1) {
      std::istringstream in(yaml);
      YAML::Parser parser(in);
      DocumentProbe probe;
      parser.HandleNextDocument(probe);
      parser.HandleNextDocument(probe);
      return SpecError(file_name, PositionOf(probe.first()), "",
                       absl::StrCat("expected one YAML document, found ", documents,
                                    " (separated by ---)"));
    }
    const YAML::Node document = YAML::Load(yaml);
    Converter converter(file_name);
    if (absl::Status s = converter.Convert(document, "", 0, root); !s.ok()) {
      return s;
    }
  } catch (const YAML::Exception& e) {
    Position at = PositionOf(e.mark);
    if (at.line == 0) at = Position{1, 1};  // every message has a position
    return SpecError(file_name, at, "", absl::StrCat("invalid YAML: ", e.msg));
  }
  return root;
}

}  // namespace sweep::spec::internal
