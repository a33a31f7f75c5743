// diffgemma-cli text generation: one prompt (-p/-f/--prompt-ids) or a chat (-cnv).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "diffgemma/context.h"
#include "diffgemma/generate.h"
#include "diffgemma/model.h"
#include "diffgemma/tokenizer.h"
#include "output.h"

namespace dgcli {

struct PromptInput {
  std::string model_path;
  bool have_text = false;
  std::string text;         // -p
  std::string file;         // -f
  bool json = false;        // --json
  bool think = false;       // --think
};

// Everything a turn needs: the model, its tokenizer (null when the file has none), the
// generation parameters with the flags applied, and how to show the answer.
struct Session {
  std::shared_ptr<dg::Model> model;
  std::shared_ptr<const dg::Tokenizer> tok;
  dg::GenerateParams params;
  GenerateArgs args;
  bool json = false;
  bool think = false;
  std::unique_ptr<TextOf> text;
};

// Set by SIGINT: the running generation stops after its current pass.
extern std::atomic<bool> g_interrupted;

// Runs one generation on ctx and shows it; returns the result (stop = CANCELLED on Ctrl-C).
dg::GenerateResult run_turn(Session& s, dg::Context& ctx, const std::vector<int32_t>& prompt, int turn);

// The whole command; returns the exit code (usage errors exit 2 directly).
int run_generate(const PromptInput& in, const GenerateArgs& args);

// -cnv (chat.cpp).
int run_chat(Session& s);

}  // namespace dgcli
