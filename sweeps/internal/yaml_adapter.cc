#include "sweeps/internal/yaml_adapter.h"

#include <algorithm>
#include <cstdint>
#include <istream>
#include <optional>
#include <streambuf>
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

// Thrown by StreamProbe to stop yaml-cpp's parser where a limit is passed, so
// that no more of the stream is read; caught in CountDocuments.
struct ProbeStop {
  YAML::Mark mark;
  std::string path;
  std::string what;
};

// How far yaml-cpp's scanner may read ahead of the events it has produced, in
// flow indicators ([ ] { } , :). While a flow collection nested in another is
// open, yaml-cpp cannot tell whether it is a key and holds every token that
// follows in memory (about 250 bytes each) until it ends: a 1 MiB line of "["
// took 245 MB. Each indicator makes at most two tokens, so this bounds what one
// parse holds to about 20 MB whatever the text's size.
constexpr int64_t kMaxIndicatorsAhead = 1 << 15;

// The text of a spec as yaml-cpp reads it (without a copy), in chunks. With
// `guard`, it checks between chunks how far the scanner has read beyond the
// last event the parser handed out (Parsed), and throws ProbeStop (without a
// path) beyond kMaxIndicatorsAhead.
class GuardedText final : public std::streambuf {
 public:
  GuardedText(const std::string& text, bool guard)
      : text_(text), guard_(guard) {}

  // The parser produced an event for a node at `mark`.
  void Parsed(const YAML::Mark& mark) {
    const size_t pos =
        std::min(static_cast<size_t>(std::max(mark.pos, 0)), supplied_);
    if (pos < parsed_) return;
    indicators_parsed_ += Indicators(parsed_, pos);
    parsed_ = pos;
    last_ = mark;
  }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (supplied_ >= text_.size()) return traits_type::eof();
    const size_t n = std::min(kChunk, text_.size() - supplied_);
    if (guard_) indicators_supplied_ += Indicators(supplied_, supplied_ + n);
    if (indicators_supplied_ - indicators_parsed_ > kMaxIndicatorsAhead) {
      throw ProbeStop{
          last_, "",
          absl::StrCat("more than ", kMaxIndicatorsAhead,
                       " of [ ] { } , : follow here before the next value: "
                       "a long flow collection ([...] or {...}) inside another "
                       "one; write long lists in block style, one \"- item\" "
                       "per line")};
    }
    char* begin = const_cast<char*>(text_.data()) + supplied_;
    setg(begin, begin, begin + n);
    supplied_ += n;
    return traits_type::to_int_type(*begin);
  }

 private:
  static constexpr size_t kChunk = 4096;

  int64_t Indicators(size_t from, size_t to) const {
    int64_t n = 0;
    for (size_t i = from; i < to; ++i) {
      switch (text_[i]) {
        case '[':
        case ']':
        case '{':
        case '}':
        case ',':
        case ':':
          ++n;
          break;
        default:
          break;
      }
    }
    return n;
  }

  const std::string& text_;
  const bool guard_;
  size_t supplied_ = 0;  // bytes handed to yaml-cpp
  size_t parsed_ = 0;    // where the last event's node starts
  int64_t indicators_supplied_ = 0, indicators_parsed_ = 0;
  YAML::Mark last_ = YAML::Mark::null_mark();
};

// Sees the events of each document of the stream, before any tree is built:
// where a document starts, whether it is anything but a lone null, and its
// size. It counts nodes as Converter does (every node but a map's keys, an
// alias as the size of the node it names) and their depth, and throws ProbeStop
// at the first node beyond kMaxNodes or kMaxDepth: parsing ends there, with
// memory bounded by the probe's stack, however long the rest of the stream.
class StreamProbe final : public YAML::EventHandler {
 public:
  // `text` (may be null) hears of every event's position.
  explicit StreamProbe(GuardedText* text = nullptr) : text_(text) {}

  void OnDocumentStart(const YAML::Mark&) override {
    first_ = YAML::Mark::null_mark();
    events_ = 0;
    only_null_ = true;
    nodes_ = 0;
    frames_.clear();
    anchor_sizes_.clear();
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Saw(mark, true);
    Leaf(mark, anchor, 1, "");
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Saw(mark, false);
    // An alias of a node that is still open (it contains the alias) counts as
    // one: Converter reports it.
    auto size = anchor_sizes_.find(anchor);
    Leaf(mark, YAML::NullAnchor, size == anchor_sizes_.end() ? 1 : size->second,
         "");
  }
  void OnScalar(const YAML::Mark& mark, const std::string&,
                YAML::anchor_t anchor, const std::string& value) override {
    Saw(mark, false);
    Leaf(mark, anchor, 1, value);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&,
                       YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Saw(mark, false);
    Open(mark, anchor, /*is_map=*/false);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&,
                  YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    Saw(mark, false);
    Open(mark, anchor, /*is_map=*/true);
  }
  void OnMapEnd() override { Close(); }

  const YAML::Mark& first() const { return first_; }
  bool only_null() const { return only_null_; }

  // The key path of the node being read ("parameters.lr.values[3]").
  std::string Path() const {
    std::string path;
    for (const Frame& f : frames_) {
      if (f.is_map) {
        if (f.expecting_key) break;  // at a key: the path is the map's
        path = JoinPath(path, f.key);
      } else {
        absl::StrAppend(&path, "[", f.index, "]");
      }
    }
    return path;
  }

 private:
  // An open collection, and where in it the parser is.
  struct Frame {
    bool is_map = false;
    bool is_key = false;        // it is itself a map's key (never counted)
    bool expecting_key = true;  // map: the next node is a key
    std::string key;            // map: the key of the entry being read
    int64_t index = 0;          // sequence: the index of the next item
    YAML::anchor_t anchor = YAML::NullAnchor;
    int64_t nodes_before = 0;  // nodes_ before it started
  };

  void Saw(const YAML::Mark& mark, bool is_null) {
    if (text_ != nullptr) text_->Parsed(mark);
    if (events_++ == 0) first_ = mark;
    only_null_ = only_null_ && is_null && events_ == 1;
  }

  // Whether the next node is a map's key, which Converter does not count.
  bool NextIsKey() const {
    return !frames_.empty() && frames_.back().is_map &&
           frames_.back().expecting_key;
  }

  // Counts a node of `size` nodes (more than one for an alias) at `mark`,
  // unless it is a key; throws ProbeStop beyond the limits.
  void Count(const YAML::Mark& mark, int64_t size) {
    if (NextIsKey()) return;
    for (const Frame& f : frames_) {
      if (f.is_key) return;  // inside a key that is no scalar: an error anyway
    }
    nodes_ += size;
    if (nodes_ > kMaxNodes) {
      throw ProbeStop{mark, Path(),
                      absl::StrCat("the spec has more than ", kMaxNodes,
                                   " YAML nodes (counting alias expansions)")};
    }
    if (static_cast<int>(frames_.size()) > kMaxDepth) {
      throw ProbeStop{
          mark, Path(),
          absl::StrCat("nested deeper than ", kMaxDepth, " levels")};
    }
  }

  void Leaf(const YAML::Mark& mark, YAML::anchor_t anchor, int64_t size,
            const std::string& text) {
    const bool key = NextIsKey();
    Count(mark, size);
    if (anchor != YAML::NullAnchor) anchor_sizes_[anchor] = 1;
    if (key) {
      frames_.back().key = text;
      frames_.back().expecting_key = false;
    } else {
      Done();
    }
  }

  void Open(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    const int64_t before = nodes_;
    const bool key = NextIsKey();
    Count(mark, 1);
    Frame f;
    f.is_map = is_map;
    f.is_key = key;
    f.anchor = anchor;
    f.nodes_before = before;
    frames_.push_back(std::move(f));
  }

  void Close() {
    if (frames_.empty()) return;
    const Frame f = std::move(frames_.back());
    frames_.pop_back();
    if (f.anchor != YAML::NullAnchor)
      anchor_sizes_[f.anchor] = nodes_ - f.nodes_before;
    if (f.is_key) {
      frames_.back().key = "?";
      frames_.back().expecting_key = false;
    } else {
      Done();
    }
  }

  // A value (or item) of the innermost collection is complete.
  void Done() {
    if (frames_.empty()) return;
    Frame& f = frames_.back();
    if (f.is_map) {
      f.expecting_key = true;
    } else {
      ++f.index;
    }
  }

  GuardedText* const text_;
  YAML::Mark first_ = YAML::Mark::null_mark();
  int events_ = 0;
  bool only_null_ = true;
  int64_t nodes_ = 0;
  std::vector<Frame> frames_;
  std::unordered_map<YAML::anchor_t, int64_t> anchor_sizes_;
};

// Returns how many documents `text` holds, counting up to kMaxDocuments.
// yaml-cpp 0.7 (Debian 12) never ends YAML::LoadAll on a stray ',' (",", "-
// a\n, b": its issue #1040): each call makes an empty document at the same
// place without consuming anything. That is reported as a syntax error here,
// and at most kMaxDocuments documents are looked at, so this always ends. A
// document beyond kMaxNodes or kMaxDepth is an error here, where parsing stops
// at the first node too many.
absl::StatusOr<int> CountDocuments(const std::string& text,
                                   absl::string_view file_name) {
  GuardedText guarded(text, /*guard=*/true);
  std::istream in(&guarded);
  in.exceptions(
      std::ios::badbit);  // a ProbeStop thrown while reading goes on up
  StreamProbe probe(&guarded);
  int documents = 0;
  std::optional<YAML::Mark> last_empty;
  constexpr int kMaxDocuments = 100;
  try {
    YAML::Parser parser(in);
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
  } catch (const ProbeStop& stop) {
    Position at = PositionOf(stop.mark);
    if (at.line == 0) at = Position{1, 1};  // stopped before the first event
    return SpecError(file_name, at,
                     stop.path.empty() ? probe.Path() : stop.path, stop.what);
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
  // Before yaml-cpp reads a byte: the work of a parse grows with the text.
  if (text.size() > kMaxBytes) {
    return SpecError(
        file_name, Position{}, "",
        absl::StrCat("the spec is ", text.size(), " bytes, more than the ",
                     kMaxBytes, " a spec may have"));
  }
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
      GuardedText unguarded(yaml, /*guard=*/false);
      std::istream in(&unguarded);
      YAML::Parser parser(in);
      StreamProbe probe;
      parser.HandleNextDocument(probe);
      parser.HandleNextDocument(probe);
      return SpecError(file_name, PositionOf(probe.first()), "",
                       absl::StrCat("expected one YAML document, found ", documents,
                                    " (separated by ---)"));
    }
    // Within the limits now: CountDocuments read all of it.
    GuardedText unguarded(yaml, /*guard=*/false);
    std::istream in(&unguarded);
    const YAML::Node document = YAML::Load(in);
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
