// diffgemma-quantize: rewrite a GGUF model in a quantized type mix, llama-quantize style.
//   diffgemma-quantize in.gguf out.gguf TYPE [--threads N]
// Bad arguments: one-line error, exit 2. Runtime errors (bad file, disk full): one line, exit 1.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "diffgemma/error.h"
#include "diffgemma/quantize_model.h"

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: diffgemma-quantize IN.gguf OUT.gguf TYPE [--threads N]\n"
               "\n"
               "  TYPE           one of %s (per-tensor rules of llama-quantize;\n"
               "                 norms, 1-D tensors, the router and .scale tensors stay F32)\n"
               "  --threads N    worker threads (default: all cores); the output does not depend on N\n"
               "  -q, --quiet    no progress lines\n"
               "  -h, --help     show this help and exit\n",
               dg::quant_mix_names());
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "diffgemma-quantize: error: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  int threads = 0;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      print_usage(stdout);
      return 0;
    } else if (a == "-q" || a == "--quiet") {
      quiet = true;
    } else if (a == "--threads" || a == "-t") {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      const char* s = argv[++i];
      char* end = nullptr;
      errno = 0;
      const long v = std::strtol(s, &end, 10);
      if (!*s || *end || errno || v < 1 || v > 1024) {
        usage_error(std::string("invalid value '") + s + "' for --threads: expected an integer from 1 to 1024");
      }
      threads = static_cast<int>(v);
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 3) usage_error("expected IN.gguf OUT.gguf TYPE");
  const auto mix = dg::parse_quant_mix(positional[2]);
  if (!mix) usage_error("unknown type '" + positional[2] + "'; choose one of " + dg::quant_mix_names());

  dg::QuantizeFileOptions opt;
  opt.threads = threads;
  if (!quiet) {
    opt.progress = [](size_t, size_t, const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
  try {
    dg::quantize_file(positional[0], positional[1], *mix, opt);
  } catch (const dg::Error& e) {
    std::fprintf(stderr, "diffgemma-quantize: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "diffgemma-quantize: error: out of memory\n");
    return 1;
  }
  if (!quiet) std::fprintf(stderr, "wrote %s (%s)\n", positional[1].c_str(), dg::quant_mix_name(*mix));
  return 0;
}
