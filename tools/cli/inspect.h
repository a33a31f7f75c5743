// `diffgemma-cli --inspect FILE`: what a user needs to see of a GGUF file.
#pragma once

#include <cstdio>

#include "diffgemma/gguf.h"

namespace dgcli {

struct InspectOptions {
  bool json = false;         // one JSON object instead of the text report
  size_t max_array = 8;      // array elements shown per key (text); JSON shows max_array too
  bool all_tensors = true;   // list every tensor (text)
};

void inspect_gguf(const dg::GGUFFile& f, const InspectOptions& opt, std::FILE* out);

}  // namespace dgcli
