// Generation flags of diffgemma-cli (llama.cpp names; diffusion knobs under --diffusion-*).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace dgcli {

struct GenerateArgs {
  int n_threads = 0;          // -t; <= 0: one per physical core
  int64_t n_ctx = 0;          // -c; 0: sized to the request (chat: min(4096, training context))
  int64_t n_predict = 256;    // -n; -1: until EOS or the context is full
  bool seed_random = true;    // -s -1 (default): a fresh seed, printed
  uint64_t seed = 0;
  std::optional<int32_t> steps;           // --diffusion-steps
  std::optional<double> t_min, t_max;     // --diffusion-t-min/--diffusion-t-max (--temp sets both)
  std::optional<double> entropy_bound;    // --diffusion-entropy-bound
  std::optional<int32_t> stability;       // --diffusion-stability
  std::optional<double> confidence;       // --diffusion-confidence
  int64_t sc_top_k = 0;                   // --diffusion-sc-top-k (0: the exact soft embedding)
  std::string kernels;                    // --kernels fast|exact|reference ("": DIFFGEMMA_KERNELS)
  bool visual = false;                    // --diffusion-visual
  bool conversation = false;              // -cnv
  bool display_prompt = true;             // --no-display-prompt
  bool verbose = false;                   // -v
  bool raw = false;                       // --raw: no chat template
  bool ignore_eos = false;                // --ignore-eos: always generate -n tokens
  std::string system_prompt;              // -sys
  bool have_prompt_ids = false;           // --prompt-ids 2,105,...
  std::vector<int32_t> prompt_ids;
};

// When argv[i] is a generation flag, consumes it (and its value: i advances) and returns true.
// A bad value is a one-line error and exit code 2.
bool parse_generate_arg(int argc, char** argv, int& i, GenerateArgs& a);

// The generation part of --help.
void print_generate_usage(std::FILE* out);

// "diffgemma-cli: error: MSG (see --help)" and exit code 2.
[[noreturn]] void fail_usage(const std::string& msg);

}  // namespace dgcli
