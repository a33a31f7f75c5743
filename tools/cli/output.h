// How diffgemma-cli shows a generation: plain text per committed canvas, a live redraw of the
// canvas (--diffusion-visual), or NDJSON events (--json). One Renderer per answer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "diffgemma/generate.h"
#include "diffgemma/tokenizer.h"

namespace dgcli {

// Token ids to text: the model's tokenizer, or the ids themselves when the file has none.
class TextOf {
 public:
  explicit TextOf(std::shared_ptr<const dg::Tokenizer> tok) : tok_(std::move(tok)) {}
  std::string operator()(const int32_t* ids, int64_t n) const;
  std::string piece(int32_t id) const;  // one token's text, as shown in the live view
  const std::shared_ptr<const dg::Tokenizer>& tokenizer() const { return tok_; }

 private:
  std::shared_ptr<const dg::Tokenizer> tok_;
};

class Renderer {
 public:
  virtual ~Renderer() = default;
  virtual void on_event(const dg::GenerateEvent& ev) = 0;
  // After generate() returns (also when it was cancelled).
  virtual void finish(const dg::GenerateResult& r) = 0;
};

struct RenderOptions {
  int32_t n_steps = 48;   // for "step s/N"
  uint64_t seed = 0;
  int turn = 0;           // chat turn, from 0
};

std::unique_ptr<Renderer> make_plain_renderer(const TextOf& text, std::FILE* out);
// Live view when `out` is a terminal, else one line per step (plain fallback).
std::unique_ptr<Renderer> make_visual_renderer(const TextOf& text, std::FILE* out, const RenderOptions& opt);
std::unique_ptr<Renderer> make_json_renderer(const TextOf& text, std::FILE* out, const RenderOptions& opt);

// The end-of-run statistics line(s), llama_perf style, to `out` (stderr).
void print_stats(std::FILE* out, const dg::GenerateResult& r);

}  // namespace dgcli
