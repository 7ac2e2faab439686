#include "hal/text/tokenizer.h"

#include <algorithm>

namespace hal::text {

void TokenSurfaces::add(std::string_view rest, std::string_view first, bool special) {
  rest_off_.push_back(uint32_t(bytes_.size()));
  rest_len_.push_back(uint32_t(rest.size()));
  bytes_.append(rest);
  if (first == rest) {
    first_off_.push_back(rest_off_.back());
  } else {
    first_off_.push_back(uint32_t(bytes_.size()));
    bytes_.append(first);
  }
  first_len_.push_back(uint32_t(first.size()));
  special_.push_back(special ? 1 : 0);
  max_length_ = std::max({max_length_, rest.size(), first.size()});
}

Status check_ids(std::span<const TokenId> ids, int32_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size)
      return invalid_argument("token id " + std::to_string(ids[i]) + " (position " +
                              std::to_string(i) + ") is outside the vocabulary [0, " +
                              std::to_string(vocab_size) + ")");
  return ok_status();
}

}  // namespace hal::text
