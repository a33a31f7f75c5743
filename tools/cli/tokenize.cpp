#include "tokenize.h"

#include <cerrno>
#include <cstring>

#include "diffgemma/chat_template.h"
#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "diffgemma/tokenizer.h"
#include "json.h"

namespace dgcli {

void tokenize_prompt(const std::string& model_path, const std::string& text, const TokenizeOptions& opt,
                     std::FILE* out) {
  auto file = dg::GGUFFile::open(model_path);
  auto tok = dg::Tokenizer::from_gguf(*file);
  std::vector<dg::TokenId> ids;
  if (opt.chat) {
    // The template writes <bos> itself, so no BOS is added on top.
    const dg::ChatTemplate tmpl = dg::ChatTemplate::for_model(*tok);
    dg::ChatValue msgs = dg::ChatValue::array();
    dg::ChatValue user = dg::ChatValue::object();
    user.set("role", dg::ChatValue("user"));
    user.set("content", dg::ChatValue(text));
    msgs.push(std::move(user));
    dg::ChatOptions copt;
    copt.enable_thinking = opt.think;
    copt.bos_token = tok->bos_id() >= 0 ? tok->token_text(tok->bos_id()) : "";
    ids = tok->tokenize(tmpl.render(msgs, dg::ChatValue(), copt), false, true);
  } else {
    ids = tok->tokenize(text, opt.add_bos && tok->add_bos_default(), opt.special);
  }
  if (!opt.json) {
    for (dg::TokenId id : ids) std::fprintf(out, "%d\n", id);
    return;
  }
  std::string s = "{\"ids\": [";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  s += "], \"pieces\": [";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + json_string(tok->token_text(ids[i]));
  s += "]}\n";
  std::fputs(s.c_str(), out);
}

std::string read_text_file(const std::string& path) {
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) throw dg::Error("cannot open '" + path + "': " + std::strerror(errno));
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (failed) throw dg::Error("cannot read '" + path + "'");
  return data;
}

}  // namespace dgcli
