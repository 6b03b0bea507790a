// UTF-8 validation, for text that must round-trip through JSON and protobuf.
// Thread-safe (pure).
#ifndef SWEEP_COMMON_UTF8_H_
#define SWEEP_COMMON_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace sweep {

// Returns the offset of the first byte of `text` that is not part of valid UTF-8
// (overlong forms, surrogates and code points beyond U+10FFFF count as invalid), or
// std::string_view::npos when all of it is valid.
size_t FirstInvalidUtf8(std::string_view text);

// Returns whether `text` is valid UTF-8 without NULs: whether CleanUtf8 would
// return it unchanged.
bool IsCleanUtf8(std::string_view text);

// `text` without the bytes that are not part of valid UTF-8, and without NULs: text
// that a protobuf string field and JSON take.
std::string CleanUtf8(std::string_view text);
// The first (last) `max` bytes of `text` at most, cut at a character boundary, as
// CleanUtf8 makes them.
std::string Utf8Head(std::string_view text, size_t max);
std::string Utf8Tail(std::string_view text, size_t max);

}  // namespace sweep

#endif  // SWEEP_COMMON_UTF8_H_
