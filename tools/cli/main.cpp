// diffgemma-cli: command-line front end. llama.cpp flag conventions; every bad flag is a
// one-line error and exit code 2, every runtime error a one-line error and exit code 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <string>

#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "args.h"
#include "generate_cmd.h"
#include "inspect.h"
#include "tokenize.h"

namespace {

constexpr const char* kVersion = "0.1.0";

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: diffgemma-cli [options]\n"
               "\n"
               "  -m, --model FILE      model file (GGUF)\n"
               "      --inspect [FILE]  print a GGUF file's metadata, model summary and tensor table\n"
               "                        (FILE, or the -m model) and exit\n"
               "      --json            with --inspect: print one JSON object instead of text\n"
               "      --max-array N     with --inspect: array elements to print per key (0 = all,\n"
               "                        default 8)\n"
               "      --tokenize        print the ids of the prompt under the -m model's tokenizer, one\n"
               "                        per line (with --json: ids and token pieces) and exit\n"
               "  -p, --prompt TEXT     prompt text\n"
               "  -f, --file FILE       read the prompt from FILE ('-' for stdin)\n"
               "      --no-bos          with --tokenize: do not add the BOS token\n"
               "      --no-special      with --tokenize: treat '<|turn>' etc. in the prompt as plain text\n"
               "      --chat            with --tokenize: format the prompt as one user turn with the\n"
               "                        model's chat template first (--think: with enable_thinking)\n"
               "  -h, --help            show this help and exit\n"
               "      --version         show the version and exit\n"
               );
  dgcli::print_generate_usage(out);
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "diffgemma-cli: error: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

size_t parse_count(const char* flag, const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (!*s || *end || errno || s[0] == '-') {
    usage_error(std::string("invalid value '") + s + "' for " + flag + ": expected a non-negative integer");
  }
  return static_cast<size_t>(v);
}

}  // namespace

static int run(int argc, char** argv) {
  std::string model_path, inspect_path;
  bool inspect = false;
  dgcli::InspectOptions opt;
  dgcli::GenerateArgs gen;
  bool tokenize = false, have_prompt = false;
  std::string prompt, prompt_file;
  dgcli::TokenizeOptions tok_opt;

  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) usage_error(std::string("missing value for ") + flag);
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      print_usage(stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("diffgemma-cli %s\n", kVersion);
      return 0;
    } else if (a == "-m" || a == "--model") {
      model_path = value("-m");
    } else if (a == "--inspect") {
      inspect = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') inspect_path = argv[++i];
    } else if (a == "--json") {
      opt.json = true;
      tok_opt.json = true;
    } else if (a == "--tokenize") {
      tokenize = true;
    } else if (a == "-p" || a == "--prompt") {
      prompt = value("-p");
      have_prompt = true;
    } else if (a == "-f" || a == "--file") {
      prompt_file = value("-f");
    } else if (a == "--no-bos") {
      tok_opt.add_bos = false;
    } else if (a == "--no-special") {
      tok_opt.special = false;
    } else if (a == "--chat") {
      tok_opt.chat = true;
    } else if (a == "--think") {
      tok_opt.think = true;
    } else if (a == "--max-array") {
      size_t n = parse_count("--max-array", value("--max-array"));
      opt.max_array = n == 0 ? std::numeric_limits<size_t>::max() : n;
    } else if (dgcli::parse_generate_arg(argc, argv, i, gen)) {
      // a generation flag (args.cpp)
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }

  if (tokenize && !inspect) {
    if (model_path.empty()) usage_error("--tokenize needs a model (-m FILE)");
    if (have_prompt == !prompt_file.empty()) usage_error("--tokenize needs exactly one of -p TEXT or -f FILE");
    try {
      if (!have_prompt) prompt = dgcli::read_text_file(prompt_file);
      dgcli::tokenize_prompt(model_path, prompt, tok_opt, stdout);
    } catch (const dg::Error& e) {
      std::fprintf(stderr, "diffgemma-cli: error: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (!inspect) {
    const dgcli::PromptInput in{model_path, have_prompt, prompt, prompt_file, opt.json, tok_opt.think};
    return dgcli::run_generate(in, gen);
  }
  const std::string path = inspect_path.empty() ? model_path : inspect_path;
  if (path.empty()) usage_error("--inspect needs a file (--inspect FILE or -m FILE)");

  try {
    auto f = dg::GGUFFile::open(path);
    dgcli::inspect_gguf(*f, opt, stdout);
  } catch (const dg::Error& e) {
    std::fprintf(stderr, "diffgemma-cli: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// Anything not already reported (an allocation the machine cannot satisfy, say, for a huge -c)
// still ends as one line and exit code 1, never an abort.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "diffgemma-cli: error: out of memory (try a smaller context, -c)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "diffgemma-cli: error: %s\n", e.what());
  }
  return 1;
}
