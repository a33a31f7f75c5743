#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace dgcli {

void fail_usage(const std::string& msg) {
  std::fprintf(stderr, "diffgemma-cli: error: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

namespace {

[[noreturn]] void bad_value(const std::string& flag, const char* s, const char* expected) {
  fail_usage("invalid value '" + std::string(s) + "' for " + flag + ": expected " + expected);
}

int64_t parse_int(const std::string& flag, const char* s, int64_t lo, int64_t hi, const char* expected) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) bad_value(flag, s, expected);
  return v;
}

double parse_float(const std::string& flag, const char* s, double lo, bool lo_open, const char* expected) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (!*s || *end || errno || !std::isfinite(v) || v < lo || (lo_open && v == lo)) bad_value(flag, s, expected);
  return v;
}

}  // namespace

bool parse_generate_arg(int argc, char** argv, int& i, GenerateArgs& a) {
  const std::string f = argv[i];
  auto value = [&]() -> const char* {
    if (i + 1 >= argc) fail_usage("missing value for " + f);
    return argv[++i];
  };
  constexpr int64_t kMaxI32 = std::numeric_limits<int32_t>::max();
  if (f == "-t" || f == "--threads") {
    a.n_threads = static_cast<int>(parse_int(f, value(), -1, 4096, "an integer from -1 to 4096 (-1 or 0: auto)"));
  } else if (f == "-c" || f == "--ctx-size") {
    a.n_ctx = parse_int(f, value(), 0, int64_t(1) << 40, "a non-negative integer (0: sized to the request)");
  } else if (f == "-n" || f == "--predict" || f == "--n-predict") {
    a.n_predict = parse_int(f, value(), -1, int64_t(1) << 40, "a positive integer or -1 (until EOS)");
    if (a.n_predict == 0) bad_value(f, "0", "a positive integer or -1 (until EOS)");
  } else if (f == "-s" || f == "--seed") {
    const char* s = value();
    if (std::string(s) == "-1") {
      a.seed_random = true;
    } else {
      char* end = nullptr;
      errno = 0;
      const unsigned long long v = std::strtoull(s, &end, 10);
      if (!*s || *end || errno || s[0] == '-') bad_value(f, s, "an integer from 0 to 2^64-1, or -1 (random)");
      a.seed_random = false;
      a.seed = v;
    }
  } else if (f == "--diffusion-steps" || f == "--diffusion-eb-max-steps") {
    a.steps = static_cast<int32_t>(parse_int(f, value(), 1, kMaxI32, "a positive integer"));
  } else if (f == "--diffusion-t-min") {
    a.t_min = parse_float(f, value(), 0.0, false, "a number >= 0");
  } else if (f == "--diffusion-t-max") {
    a.t_max = parse_float(f, value(), 0.0, true, "a number > 0");
  } else if (f == "--temp") {
    const double t = parse_float(f, value(), 0.0, true, "a number > 0");
    a.t_min = a.t_max = t;
  } else if (f == "--diffusion-entropy-bound") {
    a.entropy_bound = parse_float(f, value(), 0.0, true, "a number > 0");
  } else if (f == "--diffusion-stability") {
    a.stability = static_cast<int32_t>(parse_int(f, value(), 0, kMaxI32, "a non-negative integer"));
  } else if (f == "--diffusion-confidence") {
    a.confidence = parse_float(f, value(), 0.0, true, "a number > 0");
  } else if (f == "--diffusion-sc-top-k") {
    a.sc_top_k = parse_int(f, value(), 0, int64_t(1) << 30, "a non-negative integer (0: exact)");
  } else if (f == "--kernels") {
    a.kernels = value();
    if (a.kernels != "fast" && a.kernels != "exact" && a.kernels != "reference")
      bad_value(f, a.kernels.c_str(), "fast, exact or reference");
  } else if (f == "--diffusion-visual") {
    a.visual = true;
  } else if (f == "-cnv" || f == "--conversation") {
    a.conversation = true;
  } else if (f == "--no-display-prompt") {
    a.display_prompt = false;
  } else if (f == "-v" || f == "--verbose") {
    a.verbose = true;
  } else if (f == "--raw") {
    a.raw = true;
  } else if (f == "--ignore-eos") {
    a.ignore_eos = true;
  } else if (f == "-sys" || f == "--system-prompt") {
    a.system_prompt = value();
  } else if (f == "--prompt-ids") {
    const std::string s = value();
    a.prompt_ids.clear();
    size_t p = 0;
    while (p <= s.size()) {
      const size_t q = s.find(',', p);
      const std::string item = s.substr(p, q == std::string::npos ? std::string::npos : q - p);
      a.prompt_ids.push_back(static_cast<int32_t>(
          parse_int(f, item.c_str(), 0, kMaxI32, "comma-separated non-negative token ids, e.g. 2,105,9")));
      if (q == std::string::npos) break;
      p = q + 1;
    }
    a.have_prompt_ids = true;
  } else {
    return false;
  }
  return true;
}

void print_generate_usage(std::FILE* out) {
  std::fprintf(out,
      "\n"
      "generation:\n"
      "  The prompt (-p/-f) is formatted as one user turn with the model's chat template (after\n"
      "  -sys, if given) unless --raw.\n"
      "      --prompt-ids IDS  prompt as comma-separated token ids (no tokenizer needed)\n"
      "  -sys, --system-prompt TEXT  system turn before the prompt\n"
      "      --raw             tokenize the prompt as is (with BOS), no chat template\n"
      "      --think           let the model think (chat template enable_thinking)\n"
      "      --ignore-eos      do not stop at end-of-generation tokens (always -n tokens)\n"
      "  -n, --predict N       most tokens to generate (default 256; -1: until EOS or the context\n"
      "                        is full). The model writes whole canvases (256 tokens for the real\n"
      "                        model); the output is cut to exactly N, never more\n"
      "  -s, --seed N          random seed (default -1: random); the seed used is printed, and the\n"
      "                        same seed gives the same tokens for any thread count\n"
      "  -t, --threads N       CPU threads (default: one per physical core)\n"
      "  -c, --ctx-size N      context size (default 0: what the request needs; chat: 4096)\n"
      "  -cnv, --conversation  chat: the encoder cache is kept across turns; /clear forgets the\n"
      "                        conversation, /exit (or end of input) quits; Ctrl-C stops an answer\n"
      "      --json            NDJSON on stdout: a 'draft' event per denoising step, a 'commit'\n"
      "                        event per canvas, a 'done' event with the text and statistics\n"
      "      --no-display-prompt  do not echo the prompt before the answer\n"
      "  -v, --verbose         print model and knob details to stderr\n"
      "\n"
      "diffusion (defaults: the GGUF's diffusion.eb_* keys, else transformers' values shown):\n"
      "  Each canvas starts as random tokens and is refined for up to --diffusion-steps steps.\n"
      "  Every step the model predicts all positions; the most certain (lowest-entropy)\n"
      "  predictions are kept and the rest are replaced by fresh random tokens.\n"
      "      --diffusion-steps N         most denoising steps per canvas (48); fewer is faster\n"
      "                                  and can be as good (alias --diffusion-eb-max-steps)\n"
      "      --diffusion-entropy-bound F keep the lowest-entropy predictions while the sum of the\n"
      "                                  others' entropies stays <= F (0.1); larger keeps more per\n"
      "                                  step: faster, riskier\n"
      "      --diffusion-t-max F         sampling temperature at the first step (0.8)\n"
      "      --diffusion-t-min F         temperature the schedule falls toward, linearly, over\n"
      "                                  --diffusion-steps (0.4); with fewer steps it ends higher\n"
      "      --temp F                    constant temperature: sets t-min = t-max = F (there is\n"
      "                                  no autoregressive temperature in a diffusion model)\n"
      "      --diffusion-stability N     stop a canvas early once its best guess (argmax) has not\n"
      "                                  changed for N steps ... (1; 0: no stability needed)\n"
      "      --diffusion-confidence F    ... and the mean entropy is below F (0.005)\n"
      "      --diffusion-sc-top-k N      approximate the self-conditioning soft embedding with each\n"
      "                                  position's N most probable tokens (0: exact, the default;\n"
      "                                  BENCHMARKS.md has its cost and its effect on the output)\n"
      "      --kernels K                 fast (default: 8-bit activations on quantized weights) |\n"
      "                                  exact (float activations, fp64 sums) | reference\n"
      "      --diffusion-visual          redraw the canvas live as it denoises, accepted tokens\n"
      "                                  highlighted (one line per step when stdout is not a\n"
      "                                  terminal)\n");
}

}  // namespace dgcli
