// --json: NDJSON on stdout, one object per line:
//   {"type":"draft","turn":0,"canvas":0,"step":0,"n_accepted":3,"temperature":0.8,"mean_entropy":6.2,
//    "stopped":false,"tokens":[...],"accepted":[0,1,...],"text":"..."}
//   {"type":"commit","turn":0,"canvas":0,"tokens":[...],"text":"..."}      (tokens: the answer part)
//   {"type":"done","turn":0,"seed":N,"stop":"eos","text":"...","tokens":[...],"stats":{...}}
#include <cmath>

#include "json.h"
#include "output.h"

namespace dgcli {
namespace {

std::string ids_json(const int32_t* ids, int64_t n) {
  std::string s = "[";
  for (int64_t i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

class JsonRenderer : public Renderer {
 public:
  JsonRenderer(const TextOf& text, std::FILE* out, const RenderOptions& opt) : text_(text), out_(out), opt_(opt) {}

  void on_event(const dg::GenerateEvent& ev) override {
    const std::string head = "{\"type\":\"";
    const std::string where = ",\"turn\":" + std::to_string(opt_.turn) + ",\"canvas\":" + std::to_string(ev.canvas);
    if (ev.type == dg::GenerateEvent::Type::DRAFT) {
      std::string acc = "[";
      for (int32_t i = 0; i < ev.canvas_length; ++i) acc += (i ? "," : "") + std::to_string(ev.accepted[i] ? 1 : 0);
      acc += "]";
      emit(head + "draft\"" + where + ",\"step\":" + std::to_string(ev.step) +
           ",\"n_accepted\":" + std::to_string(ev.n_accepted) + ",\"temperature\":" + num(ev.temperature) +
           ",\"mean_entropy\":" + num(ev.mean_entropy) + ",\"stopped\":" + (ev.stopped ? "true" : "false") +
           ",\"tokens\":" + ids_json(ev.argmax, ev.canvas_length) + ",\"accepted\":" + acc +
           ",\"text\":" + json_string(text_(ev.argmax, ev.canvas_length)) + "}");
    } else if (ev.type == dg::GenerateEvent::Type::COMMIT) {
      emit(head + "commit\"" + where + ",\"tokens\":" + ids_json(ev.argmax, ev.n_valid) +
           ",\"text\":" + json_string(text_(ev.argmax, ev.n_valid)) + "}");
    }
  }

  void finish(const dg::GenerateResult& r) override {
    const dg::GenerateStats& s = r.stats;
    const int64_t n = static_cast<int64_t>(r.tokens.size());
    std::string stats = "{\"prompt_tokens\":" + std::to_string(s.prompt_tokens) +
                        ",\"generated_tokens\":" + std::to_string(s.generated_tokens) +
                        ",\"canvases\":" + std::to_string(s.canvases) +
                        ",\"denoising_steps\":" + std::to_string(s.denoising_steps) +
                        ",\"converged\":" + (s.converged() ? "true" : "false") +
                        ",\"tokens_per_forward\":" + num(s.tokens_per_forward) +
                        ",\"prefill_ms\":" + num(s.prefill_ms) + ",\"ms_per_step\":" + num(s.ms_per_step()) +
                        ",\"tokens_per_second\":" + num(s.tokens_per_second()) + ",\"ttfc_ms\":" + num(s.ttfc_ms) +
                        ",\"total_ms\":" + num(s.total_ms) + "}";
    emit("{\"type\":\"done\",\"turn\":" + std::to_string(opt_.turn) + ",\"seed\":" + std::to_string(opt_.seed) +
         ",\"stop\":\"" + dg::stop_reason_name(r.stop) + "\",\"text\":" + json_string(text_(r.tokens.data(), n)) +
         ",\"tokens\":" + ids_json(r.tokens.data(), n) + ",\"stats\":" + stats + "}");
  }

 private:
  void emit(const std::string& line) {
    std::fputs(line.c_str(), out_);
    std::fputc('\n', out_);
    std::fflush(out_);
  }

  const TextOf& text_;
  std::FILE* out_;
  RenderOptions opt_;
};

}  // namespace

std::unique_ptr<Renderer> make_json_renderer(const TextOf& text, std::FILE* out, const RenderOptions& opt) {
  return std::make_unique<JsonRenderer>(text, out, opt);
}

}  // namespace dgcli
