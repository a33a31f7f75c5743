#include "output.h"

#include "diffgemma/utf8.h"

namespace dgcli {

std::string TextOf::operator()(const int32_t* ids, int64_t n) const {
  if (tok_) return tok_->detokenize(std::vector<dg::TokenId>(ids, ids + n));
  std::string s;
  for (int64_t i = 0; i < n; ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

std::string TextOf::piece(int32_t id) const {
  if (!tok_) return "[" + std::to_string(id) + "]";
  // A byte-fallback token alone is usually not valid UTF-8: shown as U+FFFD.
  const std::string p = tok_->token_to_piece(id, true);
  std::string out;
  for (size_t i = 0; i < p.size();) {
    const size_t n = dg::utf8_sequence_length(p, i);
    if (n == 0) {
      out += "\ufffd";
      ++i;
      continue;
    }
    if (p[i] == '\n') out += "\u21b5";  // keep the canvas on screen rows we control
    else if (p[i] == '\r' || p[i] == '\t') out += ' ';
    else out.append(p, i, n);
    i += n;
  }
  return out;
}

namespace {

class PlainRenderer : public Renderer {
 public:
  PlainRenderer(const TextOf& text, std::FILE* out) : text_(text), out_(out) {
    if (text_.tokenizer()) detok_ = std::make_unique<dg::StreamingDetokenizer>(text_.tokenizer());
  }
  void on_event(const dg::GenerateEvent& ev) override {
    if (ev.type != dg::GenerateEvent::Type::COMMIT || ev.n_valid <= 0) return;
    if (detok_) {
      std::fputs(detok_->push(std::vector<dg::TokenId>(ev.argmax, ev.argmax + ev.n_valid)).c_str(), out_);
    } else {
      std::fprintf(out_, "%s%s", first_ ? "" : " ", text_(ev.argmax, ev.n_valid).c_str());
      first_ = false;
    }
    std::fflush(out_);
  }
  void finish(const dg::GenerateResult&) override {
    if (detok_) std::fputs(detok_->flush().c_str(), out_);
    std::fputc('\n', out_);
    std::fflush(out_);
  }

 private:
  const TextOf& text_;
  std::FILE* out_;
  std::unique_ptr<dg::StreamingDetokenizer> detok_;
  bool first_ = true;
};

}  // namespace

std::unique_ptr<Renderer> make_plain_renderer(const TextOf& text, std::FILE* out) {
  return std::make_unique<PlainRenderer>(text, out);
}

void print_stats(std::FILE* out, const dg::GenerateResult& r) {
  const dg::GenerateStats& s = r.stats;
  std::fprintf(out,
               "diffgemma: prompt %lld tokens, prefill %.1f ms | %d canvas%s, %d denoising steps (%.1f per canvas, "
               "%.2f ms/step) | %lld tokens, %.2f tokens/forward | %.1f tokens/s effective | first canvas %.1f ms "
               "| total %.1f ms | stop: %s%s\n",
               static_cast<long long>(s.prompt_tokens), s.prefill_ms, s.canvases, s.canvases == 1 ? "" : "es",
               s.denoising_steps,
               s.canvases ? static_cast<double>(s.denoising_steps) / s.canvases : 0.0, s.ms_per_step(),
               static_cast<long long>(s.generated_tokens), s.tokens_per_forward, s.tokens_per_second(), s.ttfc_ms,
               s.total_ms, dg::stop_reason_name(r.stop), s.converged() ? ", converged" : "");
}

}  // namespace dgcli
