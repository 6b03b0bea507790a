// The adapter over yaml-cpp: the only code in sweep that includes a yaml-cpp
// header or catches its exceptions. It turns YAML text into a plain tree of
// YamlNode values that the spec parser walks without any chance of a throw.
//
// The tree keeps what the parser needs to type scalars and to point at
// mistakes: each node's tag, its raw scalar text and its 1-based position; map
// entries keep their keys' positions and their file order. Aliases are
// expanded; an alias inside the node it refers to is an error rather than
// endless recursion.
//
// The work of one parse is bounded before it is done: a text beyond kMaxBytes
// is refused before yaml-cpp sees it, and a document beyond kMaxNodes nodes
// (counting alias expansions) or kMaxDepth levels is refused while yaml-cpp
// reads it, at the first node too many, before any tree is built. So is a long
// flow collection nested in another one ("[[0, 0, ...]]"), for which yaml-cpp
// would hold every token until it ends (about 100 bytes of memory per byte of
// text): its scanner may read at most 32,768 flow indicators ([ ] { } , :)
// ahead of the events it has produced. A parse takes a few tens of MB at most,
// whatever the text.
//
// Thread safety: ParseYaml is a pure function.
#ifndef SWEEP_SWEEPS_INTERNAL_YAML_ADAPTER_H_
#define SWEEP_SWEEPS_INTERNAL_YAML_ADAPTER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sweeps/spec.h"

namespace sweep::spec::internal {

// 16 MiB: far beyond any spec a person writes (the scheduler takes 1 MiB unless
// its --max-spec-bytes says otherwise), and still a bounded parse.
inline constexpr size_t kMaxBytes = 16 << 20;
inline constexpr int kMaxNodes = 100000;
inline constexpr int kMaxDepth = 64;

struct YamlEntry;

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };

  Kind kind = Kind::kNull;
  // yaml-cpp's tag: "?" for a plain scalar or untagged collection, "!" for a
  // quoted scalar or a block literal, the resolved tag of an explicit one
  // ("tag:yaml.org,2002:float" for `!!float`, "!custom" for `!custom`); empty
  // for null.
  std::string tag;
  std::string text;  // kScalar: the scalar's text, quotes removed
  // Where the node starts. For a null map value (`key:` with nothing after it)
  // this is the key's position, since an empty value has none of its own.
  Position position;
  std::vector<YamlNode> items;     // kSequence
  std::vector<YamlEntry> entries;  // kMap, in file order, keys unique

  // Returns the entry whose key is `key`, or nullptr.
  const YamlEntry* Find(absl::string_view key) const;
};

struct YamlEntry {
  std::string key;
  Position key_position;
  YamlNode value;
};

// Parses `text` (one YAML document; UTF-8, LF or CRLF line endings).
// Returns the root node: kind kNull at 1:1 when the text holds no document
// (empty, or only comments). Returns InvalidArgument "FILE:LINE:COL: KEY.PATH:
// what" (the path omitted where there is none) for text that is not UTF-8, a
// key or scalar that is not valid UTF-8 once its escapes are applied or that
// holds a NUL character, a text beyond kMaxBytes (no position), a YAML syntax
// error (with yaml-cpp's message), more than one document, a map key that is
// not a scalar, a duplicate key, an alias inside the node it refers to, a tree
// beyond kMaxNodes / kMaxDepth (at the first node too many), or a flow
// collection that makes yaml-cpp read too far ahead (where the parser was).
absl::StatusOr<YamlNode> ParseYaml(absl::string_view text,
                                   absl::string_view file_name);

}  // namespace sweep::spec::internal

#endif  // SWEEP_SWEEPS_INTERNAL_YAML_ADAPTER_H_
