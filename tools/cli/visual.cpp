// --diffusion-visual: the canvas redrawn in place after every denoising step. The draft shown is
// the argmax canvas (what transformers' streamer shows); positions whose sample was accepted this
// step are highlighted. Committed text stays above the live area. When stdout is not a terminal,
// each step is one plain line instead.
#include <unistd.h>

#include "output.h"

namespace dgcli {
namespace {

constexpr const char* kSave = "\0337";
constexpr const char* kRestoreClear = "\0338\033[J";
constexpr const char* kAccepted = "\033[1;32m";
constexpr const char* kDim = "\033[2m";
constexpr const char* kReset = "\033[0m";

class VisualRenderer : public Renderer {
 public:
  VisualRenderer(const TextOf& text, std::FILE* out, const RenderOptions& opt, bool tty)
      : text_(text), out_(out), opt_(opt), tty_(tty) {
    if (tty_) std::fputs(kSave, out_);
  }

  void on_event(const dg::GenerateEvent& ev) override {
    if (ev.type == dg::GenerateEvent::Type::DRAFT) {
      draft(ev);
    } else if (ev.type == dg::GenerateEvent::Type::COMMIT) {
      const std::string t = text_(ev.argmax, ev.n_valid);
      if (tty_) {
        std::fputs(kRestoreClear, out_);
        std::fputs(t.c_str(), out_);
        std::fputs(kSave, out_);
      } else {
        std::fprintf(out_, "[commit %d] %s\n", ev.canvas, escape(t).c_str());
      }
      committed_ += t;
      std::fflush(out_);
    }
  }

  void finish(const dg::GenerateResult& r) override {
    if (tty_) {
      std::fputs(kRestoreClear, out_);
      std::fputc('\n', out_);
    } else {
      std::fprintf(out_, "%s\n", text_(r.tokens.data(), static_cast<int64_t>(r.tokens.size())).c_str());
    }
    std::fflush(out_);
  }

 private:
  static std::string escape(const std::string& s) {
    std::string o;
    for (char c : s) o += c == '\n' ? std::string("\\n") : std::string(1, c);
    return o;
  }

  void draft(const dg::GenerateEvent& ev) {
    const int32_t C = ev.canvas_length;
    if (!tty_) {
      std::string line;
      for (int32_t i = 0; i < C; ++i) line += text_.piece(ev.argmax[i]);
      std::fprintf(out_, "[canvas %d step %d/%d] %d/%d accepted, t=%.3f, mean entropy %.4f: %s\n", ev.canvas,
                   ev.step + 1, opt_.n_steps, ev.n_accepted, C, ev.temperature, ev.mean_entropy, line.c_str());
      std::fflush(out_);
      return;
    }
    std::string s = kRestoreClear;
    for (int32_t i = 0; i < C; ++i) {
      s += ev.accepted[i] ? kAccepted : kDim;
      s += text_.piece(ev.argmax[i]);
      s += kReset;
    }
    char status[160];
    std::snprintf(status, sizeof status, "\n%s[canvas %d · step %d/%d · %d/%d accepted · t %.2f · H %.3f]%s",
                  kDim, ev.canvas + 1, ev.step + 1, opt_.n_steps, ev.n_accepted, C, ev.temperature,
                  ev.mean_entropy, kReset);
    s += status;
    std::fputs(s.c_str(), out_);
    std::fflush(out_);
  }

  const TextOf& text_;
  std::FILE* out_;
  RenderOptions opt_;
  bool tty_;
  std::string committed_;
};

}  // namespace

std::unique_ptr<Renderer> make_visual_renderer(const TextOf& text, std::FILE* out, const RenderOptions& opt) {
  return std::make_unique<VisualRenderer>(text, out, opt, isatty(fileno(out)) != 0);
}

}  // namespace dgcli
