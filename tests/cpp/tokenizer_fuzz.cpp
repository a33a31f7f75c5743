// Drives the tokenizer, detokenizer, streaming detokenizer and native chat renderer with random
// input (arbitrary bytes, invalid UTF-8, pieces of special tokens, random ids, random message
// trees), so that a sanitizer build catches any bad memory access or undefined behaviour.
// Checks the invariants that hold for any input: ids are in range, detokenize(tokenize(text))
// gives the text back for valid UTF-8 without "▁", and streamed output equals detokenize.
//
// usage: tokenizer_fuzz MODEL.gguf [ITERATIONS] [SEED]; prints "ok N" and exits 0, or reports the
// first failed invariant and exits 1.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "diffgemma/chat_template.h"
#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "diffgemma/tokenizer.h"

namespace {

const char* kPieces[] = {"<bos>", "<|turn>", "<turn|>", "<|channel>", "<|\"|>", "<|", "|>", "<0x41>", "\xE2\x96\x81",
                         " ", "  ", "\n", "\n\n", "\t", "a", "the", "\xC3\xA9", "\xF0\x9F\x98\x80", "\xE4\xBD\xA0"};

std::string random_text(std::mt19937& rng) {
  std::string s;
  const int n = rng() % 40;
  for (int i = 0; i < n; ++i) {
    switch (rng() % 4) {
      case 0: s += static_cast<char>(rng() % 256); break;  // any byte, often invalid UTF-8
      case 1: s += static_cast<char>(0x20 + rng() % 95); break;
      default: s += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))]; break;
    }
  }
  return s;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    unsigned cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

dg::ChatValue random_value(std::mt19937& rng, int depth) {
  switch (rng() % (depth > 3 ? 5 : 7)) {
    case 0: return dg::ChatValue();
    case 1: return dg::ChatValue(static_cast<bool>(rng() % 2));
    case 2: return dg::ChatValue(static_cast<int64_t>(rng() % 2001) - 1000);
    case 3: return dg::ChatValue(std::ldexp(static_cast<double>(rng()), static_cast<int>(rng() % 80) - 60));
    case 4: return dg::ChatValue(random_text(rng));
    case 5: {
      dg::ChatValue a = dg::ChatValue::array();
      for (int i = rng() % 4; i > 0; --i) a.push(random_value(rng, depth + 1));
      return a;
    }
    default: {
      static const char* keys[] = {"role", "content", "type", "text", "function", "name", "arguments", "tool_calls",
                                   "tool_responses", "response", "reasoning", "properties", "required", "items",
                                   "description", "enum", "nullable", "parameters", "id", "tool_call_id"};
      dg::ChatValue o = dg::ChatValue::object();
      for (int i = rng() % 5; i > 0; --i) o.set(keys[rng() % 20], random_value(rng, depth + 1));
      return o;
    }
  }
}

int fail(const char* what, const std::string& input) {
  std::fprintf(stderr, "FAILED: %s on input of %zu bytes\n", what, input.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tokenizer_fuzz MODEL.gguf [ITERATIONS] [SEED]\n");
    return 2;
  }
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 2000;
  std::mt19937 rng(argc > 3 ? std::atoi(argv[3]) : 1);
  auto file = dg::GGUFFile::open(argv[1]);
  std::shared_ptr<const dg::Tokenizer> tok = dg::Tokenizer::from_gguf(*file);
  const auto n_vocab = static_cast<dg::TokenId>(tok->n_vocab());
  const dg::ChatTemplate formats[] = {dg::ChatTemplate::from_name("gemma4"),
                                      dg::ChatTemplate::from_name("gemma4-release")};

  for (int it = 0; it < iterations; ++it) {
    const std::string text = random_text(rng);
    for (bool special : {true, false}) {
      const std::vector<dg::TokenId> ids = tok->tokenize(text, rng() % 2, special);
      for (dg::TokenId id : ids) {
        if (id < 0 || id >= n_vocab) return fail("id out of range", text);
      }
      const std::string back = tok->detokenize(ids, true);
      if (!valid_utf8(back)) return fail("detokenize produced invalid UTF-8", text);
      if (valid_utf8(text) && text.find("\xE2\x96\x81") == std::string::npos && back != text &&
          back != tok->token_text(tok->bos_id()) + text) {
        return fail("round trip", text);
      }
      dg::StreamingDetokenizer stream(tok, true);
      std::string streamed;
      for (size_t i = 0; i < ids.size();) {
        const size_t n = 1 + rng() % 5;
        std::vector<dg::TokenId> chunk(ids.begin() + i, ids.begin() + std::min(ids.size(), i + n));
        const std::string piece = stream.push(chunk);
        if (!valid_utf8(piece)) return fail("streamed piece is invalid UTF-8", text);
        streamed += piece;
        i += n;
      }
      streamed += stream.flush();
      if (streamed != back) return fail("streamed text differs from detokenize", text);
    }
    // random ids, byte tokens included
    std::vector<dg::TokenId> ids(rng() % 16);
    for (auto& id : ids) id = static_cast<dg::TokenId>(rng() % n_vocab);
    if (!valid_utf8(tok->detokenize(ids, rng() % 2))) return fail("detokenize of random ids", "");
    // random conversations: an error is fine, a crash is not
    dg::ChatValue msgs = dg::ChatValue::array();
    static const char* roles[] = {"user", "assistant", "system", "tool", "developer"};
    for (int i = rng() % 6; i > 0; --i) {
      dg::ChatValue m = rng() % 4 ? dg::ChatValue::object() : random_value(rng, 1);
      if (m.is_object()) {
        if (rng() % 8) m.set("role", dg::ChatValue(roles[rng() % 5]));
        if (rng() % 4) m.set("content", rng() % 3 ? dg::ChatValue(random_text(rng)) : random_value(rng, 2));
        if (rng() % 3 == 0) m.set(rng() % 2 ? "tool_calls" : "reasoning", random_value(rng, 2));
      }
      msgs.push(m);
    }
    dg::ChatOptions opt;
    opt.enable_thinking = rng() % 2;
    opt.add_generation_prompt = rng() % 2;
    try {
      formats[rng() % 2].render(msgs, rng() % 3 ? dg::ChatValue() : random_value(rng, 1), opt);
    } catch (const dg::Error&) {
    }
  }
  std::printf("ok %d\n", iterations);
  return 0;
}
