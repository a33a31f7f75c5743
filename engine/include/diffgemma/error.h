// Errors a user can cause (bad file, bad flag, bad input) are reported as dg::Error with a
// message that names what is wrong; the CLI prints it on one line, the bindings raise it.
#pragma once

#include <stdexcept>
#include <string>

namespace dg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A GGUF file that cannot be read: truncated, malformed, or inconsistent with itself.
class GGUFError : public Error {
 public:
  explicit GGUFError(const std::string& what) : Error(what) {}
};

}  // namespace dg
