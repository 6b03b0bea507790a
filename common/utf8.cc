#include "common/utf8.h"

namespace sweep {

size_t FirstInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates (U+D800..U+DFFF)
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // nothing beyond U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

bool IsCleanUtf8(std::string_view text) {
  return text.find('\0') == std::string_view::npos &&
         FirstInvalidUtf8(text) == std::string_view::npos;
}

std::string CleanUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    size_t bad = FirstInvalidUtf8(text);
    std::string_view good = text.substr(0, bad);
    for (char c : good) {
      if (c != '\0') out.push_back(c);
    }
    if (bad == std::string_view::npos) break;
    text.remove_prefix(bad + 1);
  }
  return out;
}

std::string Utf8Tail(std::string_view text, size_t max) {
  if (text.size() > max) {
    text.remove_prefix(text.size() - max);
    // Skip the rest of a character cut in two (continuation bytes 10xxxxxx).
    for (int i = 0; i < 3 && !text.empty() && (text[0] & 0xC0) == 0x80; ++i) {
      text.remove_prefix(1);
    }
  }
  return CleanUtf8(text);
}

std::string Utf8Head(std::string_view text, size_t max) {
  if (text.size() > max) {
    size_t end = max;
    // Drop a character cut in two: back to the start of the last one.
    while (end > 0 && (text[end] & 0xC0) == 0x80 && max - end < 3) --end;
    text = text.substr(0, end);
  }
  return CleanUtf8(text);
}

}  // namespace sweep
