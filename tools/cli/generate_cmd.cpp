#include "generate_cmd.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <random>

#include "diffgemma/chat_template.h"
#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "diffgemma/profile.h"
#include "tokenize.h"

namespace dgcli {

std::atomic<bool> g_interrupted{false};

namespace {

void on_sigint(int) { g_interrupted.store(true); }

void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read in chat mode returns
  sigaction(SIGINT, &sa, nullptr);
}

uint64_t fresh_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

std::vector<int32_t> chat_prompt(const Session& s, const std::string& user) {
  const dg::ChatTemplate tmpl = dg::ChatTemplate::for_model(*s.tok);
  dg::ChatValue msgs = dg::ChatValue::array();
  if (!s.args.system_prompt.empty()) {
    dg::ChatValue sys = dg::ChatValue::object();
    sys.set("role", dg::ChatValue("system"));
    sys.set("content", dg::ChatValue(s.args.system_prompt));
    msgs.push(std::move(sys));
  }
  dg::ChatValue u = dg::ChatValue::object();
  u.set("role", dg::ChatValue("user"));
  u.set("content", dg::ChatValue(user));
  msgs.push(std::move(u));
  dg::ChatOptions opt;
  opt.enable_thinking = s.think;
  opt.bos_token = s.tok->bos_id() >= 0 ? s.tok->token_text(s.tok->bos_id()) : "";
  return s.tok->tokenize(tmpl.render(msgs, dg::ChatValue(), opt), false, true);
}

}  // namespace

dg::GenerateResult run_turn(Session& s, dg::Context& ctx, const std::vector<int32_t>& prompt, int turn) {
  RenderOptions ro;
  ro.n_steps = s.params.diffusion.max_denoising_steps;
  ro.seed = s.params.seed;
  ro.turn = turn;
  std::unique_ptr<Renderer> r = s.json     ? make_json_renderer(*s.text, stdout, ro)
                                : s.args.visual ? make_visual_renderer(*s.text, stdout, ro)
                                                : make_plain_renderer(*s.text, stdout);
  dg::GenerateParams p = s.params;
  p.draft_events = s.json || s.args.visual;
  p.cancel = &g_interrupted;
  p.on_event = [&](const dg::GenerateEvent& ev) { r->on_event(ev); };
  g_interrupted.store(false);
  dg::GenerateResult res = dg::generate(ctx, prompt, p);
  r->finish(res);
  if (!s.json) {
    if (res.stop == dg::StopReason::CANCELLED) std::fprintf(stderr, "diffgemma: [cancelled]\n");
    print_stats(stderr, res);
  }
  return res;
}

int run_generate(const PromptInput& in, const GenerateArgs& args) {
  if (in.model_path.empty()) fail_usage("no model given (-m FILE)");
  const int n_sources = (in.have_text ? 1 : 0) + (in.file.empty() ? 0 : 1) + (args.have_prompt_ids ? 1 : 0);
  if (n_sources > 1) fail_usage("give only one of -p, -f and --prompt-ids");
  if (n_sources == 0 && !args.conversation) fail_usage("nothing to generate from: give -p TEXT, -f FILE or --prompt-ids");
  if (args.conversation && args.have_prompt_ids) fail_usage("-cnv needs the model's tokenizer; --prompt-ids cannot be used");

  Session s;
  s.args = args;
  s.json = in.json;
  s.think = in.think;
  try {
    std::string text = in.text;
    if (!in.file.empty()) text = read_text_file(in.file);
    if (!args.kernels.empty()) dg::set_kernel_mode_string(args.kernels.c_str());
    const auto load_start = std::chrono::steady_clock::now();
    s.model = dg::Model::load(in.model_path, args.n_threads);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    auto file = dg::GGUFFile::open(in.model_path);
    try {
      s.tok = dg::Tokenizer::from_gguf(*file);
    } catch (const dg::Error& e) {
      if (!args.have_prompt_ids) throw dg::Error(std::string("the model has no usable tokenizer (") + e.what() +
                                                 "); give the prompt as --prompt-ids");
    }
    s.text = std::make_unique<TextOf>(s.tok);

    dg::GenerateParams& p = s.params;
    p.diffusion = dg::DiffusionParams::from_model(*s.model);
    if (args.steps) p.diffusion.max_denoising_steps = *args.steps;
    if (args.t_min) p.diffusion.t_min = static_cast<float>(*args.t_min);
    if (args.t_max) p.diffusion.t_max = static_cast<float>(*args.t_max);
    if (args.entropy_bound) p.diffusion.entropy_bound = static_cast<float>(*args.entropy_bound);
    if (args.stability) p.diffusion.stability_threshold = *args.stability;
    if (args.confidence) p.diffusion.confidence_threshold = static_cast<float>(*args.confidence);
    if (std::string bad = p.diffusion.validate(); !bad.empty()) fail_usage(bad);
    p.seed = args.seed_random ? fresh_seed() : args.seed;
    p.no_eos = args.ignore_eos;
    if (!in.json) std::fprintf(stderr, "diffgemma: seed %llu\n", static_cast<unsigned long long>(p.seed));
    if (args.verbose) {
      const auto& hp = s.model->hparams();
      std::fprintf(stderr,
                   "diffgemma: %s: %s weights, %lld layers, vocab %lld, canvas %lld, %d threads\n"
                   "diffgemma: steps %d, entropy bound %g, t %g -> %g, stability %d, confidence %g\n",
                   in.model_path.c_str(), s.model->weight_type_name().c_str(), static_cast<long long>(hp.n_layer),
                   static_cast<long long>(hp.n_vocab), static_cast<long long>(hp.canvas_length),
                   s.model->n_threads(), p.diffusion.max_denoising_steps, p.diffusion.entropy_bound,
                   p.diffusion.t_max, p.diffusion.t_min, p.diffusion.stability_threshold,
                   p.diffusion.confidence_threshold);
      const double packed_mb = static_cast<double>(s.model->packed_bytes()) / 1e6;
      if (packed_mb > 0)
        std::fprintf(stderr, "diffgemma: loaded in %.1f s, %.1f MB of weights packed for the int8 kernels "
                     "(DIFFGEMMA_REPACK=0 skips packing)\n", load_s, packed_mb);
      else
        std::fprintf(stderr, "diffgemma: loaded in %.1f s\n", load_s);
    }
    install_sigint();
    if (args.conversation) return run_chat(s);

    std::vector<int32_t> prompt;
    if (args.have_prompt_ids) prompt = args.prompt_ids;
    else if (args.raw) prompt = s.tok->tokenize(text, s.tok->add_bos_default(), true);
    else prompt = chat_prompt(s, text);
    const int64_t C = s.model->hparams().canvas_length;
    int64_t n_ctx = args.n_ctx;
    if (args.n_predict > 0) {
      p.max_new_tokens = args.n_predict;
      if (n_ctx == 0) n_ctx = dg::required_context(*s.model, 0, static_cast<int64_t>(prompt.size()), p.max_new_tokens);
    } else {  // -n -1: until EOS, as many canvases as the context holds
      if (n_ctx == 0) n_ctx = s.model->hparams().n_ctx_train > 0 ? std::min<int64_t>(s.model->hparams().n_ctx_train, 4096) : 4096;
      p.max_new_tokens = ((n_ctx - static_cast<int64_t>(prompt.size())) / C) * C;
      if (p.max_new_tokens <= 0) throw dg::Error("the prompt fills the context (" + std::to_string(prompt.size()) +
                                                 " tokens, n_ctx " + std::to_string(n_ctx) + ")");
    }
    dg::ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.sc_top_k = args.sc_top_k;
    dg::Context ctx(s.model, cp);
    if (args.display_prompt && !in.json && !args.visual) {
      std::fputs(s.text->operator()(prompt.data(), static_cast<int64_t>(prompt.size())).c_str(), stdout);
      if (!s.tok) std::fputc('\n', stdout);
      std::fflush(stdout);
    }
    const dg::GenerateResult r = run_turn(s, ctx, prompt, 0);
    return r.stop == dg::StopReason::CANCELLED ? 130 : 0;
  } catch (const dg::Error& e) {
    std::fprintf(stderr, "diffgemma-cli: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace dgcli
