// -cnv: a chat REPL. The encoder cache is kept across turns: each turn encodes only what is new
// (the uncommitted last canvas of the previous answer, its end-of-turn, and the new user turn),
// the way llama.cpp's conversation mode keeps its KV cache. /clear forgets everything, /exit or
// end of input quits, Ctrl-C stops the answer being generated.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "diffgemma/chat_template.h"
#include "diffgemma/error.h"
#include "generate_cmd.h"

namespace dgcli {
namespace {

// The template's rendering of `msgs` (no BOS when `first` is false: it is already cached).
std::string render(const Session& s, const dg::ChatTemplate& tmpl, const dg::ChatValue& msgs, bool first) {
  dg::ChatOptions opt;
  opt.enable_thinking = s.think;
  opt.bos_token = first && s.tok->bos_id() >= 0 ? s.tok->token_text(s.tok->bos_id()) : "";
  return tmpl.render(msgs, dg::ChatValue(), opt);
}

dg::ChatValue message(const char* role, const std::string& content) {
  dg::ChatValue m = dg::ChatValue::object();
  m.set("role", dg::ChatValue(role));
  m.set("content", dg::ChatValue(content));
  return m;
}

}  // namespace

int run_chat(Session& s) {
  const dg::ChatTemplate tmpl = dg::ChatTemplate::for_model(*s.tok);
  const auto& hp = s.model->hparams();
  dg::ContextParams cp;
  cp.n_ctx = s.args.n_ctx > 0 ? s.args.n_ctx : (hp.n_ctx_train > 0 ? std::min<int64_t>(hp.n_ctx_train, 4096) : 4096);
  cp.sc_top_k = s.args.sc_top_k;
  dg::Context ctx(s.model, cp);
  const bool interactive = isatty(fileno(stdin)) != 0;
  const dg::TokenId end_turn = s.tok->find_token("<turn|>");
  std::vector<int32_t> carry;  // tokens of the last answer not yet encoded
  bool first = true;
  int turn = 0;
  if (!s.json)
    std::fprintf(stderr, "diffgemma: chat mode: /clear forgets the conversation, /exit quits, Ctrl-C stops an answer\n");
  for (;;) {
    if (interactive && !s.json) {
      std::fputs("\n> ", stdout);
      std::fflush(stdout);
    }
    std::string line;
    g_interrupted.store(false);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/clear") {
      ctx.clear();
      carry.clear();
      first = true;
      if (!s.json) std::fprintf(stderr, "diffgemma: conversation cleared\n");
      continue;
    }
    if (line.empty()) continue;
    dg::ChatValue msgs = dg::ChatValue::array();
    if (first && !s.args.system_prompt.empty()) msgs.push(message("system", s.args.system_prompt));
    msgs.push(message("user", line));
    std::vector<int32_t> prompt = carry;
    if (!first) {
      // Close the previous model turn: "<turn|>\n", unless the answer already ended with it.
      if (prompt.empty() || prompt.back() != end_turn) prompt.push_back(end_turn);
      const std::vector<int32_t> nl = s.tok->tokenize("\n", false, true);
      prompt.insert(prompt.end(), nl.begin(), nl.end());
    }
    const std::vector<int32_t> turn_ids = s.tok->tokenize(render(s, tmpl, msgs, first), false, true);
    prompt.insert(prompt.end(), turn_ids.begin(), turn_ids.end());
    dg::GenerateParams& p = s.params;
    const int64_t C = hp.canvas_length;
    const int64_t room = ((ctx.n_ctx() - ctx.n_past() - static_cast<int64_t>(prompt.size())) / C) * C;
    p.max_new_tokens = s.args.n_predict > 0 ? std::min<int64_t>(s.args.n_predict, room) : room;
    if (p.max_new_tokens <= 0) {
      std::fprintf(stderr, "diffgemma-cli: error: the context is full (n_ctx %lld); /clear to start over\n",
                   static_cast<long long>(ctx.n_ctx()));
      continue;
    }
    try {
      const dg::GenerateResult r = run_turn(s, ctx, prompt, turn++);
      carry = r.pending_tokens;
      first = false;
      p.seed += 1;  // a different draw per turn, still reproducible from the printed seed
    } catch (const dg::Error& e) {
      std::fprintf(stderr, "diffgemma-cli: error: %s\n", e.what());
    }
  }
  return 0;
}

}  // namespace dgcli
