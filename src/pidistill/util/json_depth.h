// The nesting depth of JSON text, measured without parsing it: a guard before nlohmann::json parses text that
// came from a file. Why: parsing itself is iterative, but copying a value is recursive, and an ordered_json
// object copies its values when it grows, so a value nested some 10,000 levels deep inside an object overflows
// the stack (found under AddressSanitizer by Safetensors.DeeplyNestedHeaderValueIsAnErrorNotACrash).
#pragma once
#include "pidistill/util/error.h"

#include <string>

namespace pidistill {

// Error "WHERE: JSON nested deeper than MAX levels ..." when an array or object in `text` nests deeper than
// `max_depth`. Brackets inside strings (escapes included) are not counted; invalid JSON is left to the parser.
inline void check_json_depth(const std::string& text, int max_depth, const std::string& where) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        fail(where, "JSON nested deeper than " + std::to_string(max_depth) + " levels at byte " +
                        std::to_string(i) + " (damaged or hostile file)");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace pidistill
