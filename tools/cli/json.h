// Minimal JSON output helpers for the CLI's machine-readable modes.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace dgcli {

// A JSON string literal of s. Valid UTF-8 passes through; control characters are escaped and
// bytes that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
std::string json_string(std::string_view s);

}  // namespace dgcli
