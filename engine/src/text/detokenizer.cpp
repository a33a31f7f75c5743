// Detokenization: ids -> UTF-8, whole and streamed. Mirrors HF's decoder chain for Gemma
// (Replace "▁" -> " ", ByteFallback, Fuse).
#include <string>
#include <vector>

#include "diffgemma/error.h"
#include "diffgemma/tokenizer.h"
#include "text/utf8.h"

namespace dg {

using text::kReplacementChar;
using text::kSpaceMarker;

namespace {

void append_unescaped(std::string& out, std::string_view t) {
  size_t pos = 0;
  while (true) {
    const size_t hit = t.find(kSpaceMarker, pos);
    if (hit == std::string_view::npos) break;
    out.append(t.data() + pos, hit - pos);
    out += ' ';
    pos = hit + kSpaceMarker.size();
  }
  out.append(t.data() + pos, t.size() - pos);
}

// HF ByteFallback: a run of byte tokens becomes its bytes when they are valid UTF-8, else one
// U+FFFD per byte token.
void flush_byte_run(std::string& out, std::string& run) {
  if (run.empty()) return;
  if (text::utf8_valid(run)) {
    out += run;
  } else {
    for (size_t i = 0; i < run.size(); ++i) out += kReplacementChar;
  }
  run.clear();
}

}  // namespace

// ---- decoding --------------------------------------------------------------------------------

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  const std::string& t = token_text(id);
  uint8_t b;
  if (is_byte_token(id, &b)) return std::string(1, static_cast<char>(b));
  const TokenType ty = types_[id];
  if ((ty == TokenType::CONTROL || ty == TokenType::UNKNOWN) && !render_special) return "";
  std::string out;
  append_unescaped(out, t);
  return out;
}

std::string Tokenizer::detokenize(const std::vector<TokenId>& ids, bool render_special) const {
  std::string out, run;
  for (TokenId id : ids) {
    token_text(id);  // range check
    uint8_t b;
    if (is_byte_token(id, &b)) {
      run += static_cast<char>(b);
      continue;
    }
    const TokenType ty = types_[id];
    if ((ty == TokenType::CONTROL || ty == TokenType::UNKNOWN) && !render_special) continue;  // hidden
    flush_byte_run(out, run);
    append_unescaped(out, tokens_[id]);
  }
  flush_byte_run(out, run);
  return out;
}

// ---- streaming -------------------------------------------------------------------------------

StreamingDetokenizer::StreamingDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool render_special)
    : tok_(std::move(tokenizer)), render_special_(render_special) {
  if (!tok_) throw Error("StreamingDetokenizer needs a tokenizer");
}

std::string StreamingDetokenizer::push(TokenId id) {
  std::string out;
  tok_->token_text(id);  // range check
  uint8_t b;
  if (tok_->is_byte_token(id, &b)) {
    held_ += static_cast<char>(b);  // the run's fate is known only when it ends
    return out;
  }
  const TokenType ty = tok_->types_[id];
  if ((ty == TokenType::CONTROL || ty == TokenType::UNKNOWN) && !render_special_) return out;
  flush_byte_run(out, held_);
  append_unescaped(out, tok_->tokens_[id]);
  return out;
}

std::string StreamingDetokenizer::push(const std::vector<TokenId>& ids) {
  std::string out;
  for (TokenId id : ids) out += push(id);
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  flush_byte_run(out, held_);
  return out;
}

}  // namespace dg
