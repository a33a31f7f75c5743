// Tokenizer: vocabulary loading, special-token cutting, gemma4 BPE and SentencePiece BPE
// (detokenization is in detokenizer.cpp). See diffgemma/tokenizer.h for the behaviour; each part
// names the HF `tokenizers` / llama.cpp behaviour it mirrors.
#include "diffgemma/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <queue>

#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "text/utf8.h"

namespace dg {

using text::kSpaceMarker;

namespace {

// Gemma 4 tokens that gguf-py writes as USER_DEFINED (so llama.cpp renders them) although HF
// treats them as special added tokens (Gemma4Model.set_vocab; gguf-layout.md §3.1). With
// special=false they are plain text, as HF's encode_special_tokens makes them.
constexpr const char* kSpecialUserDefined[] = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>",
};

// Text that ends generation when it is a token of the vocabulary (besides eos_token_id).
constexpr const char* kEndOfGenerationTexts[] = {"<eos>", "<turn|>", "<|tool_response>", "<end_of_turn>"};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB, else -1 (HF's ByteFallback decoder test: six characters, "<0x", two hex, ">").
int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  const int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

}  // namespace

// ---- special-token matcher: a byte trie, leftmost-longest like HF's aho-corasick ---------------

struct Tokenizer::Impl {
  struct Node {
    TokenId token = -1;      // token ending here
    bool special = false;    // skipped (kept as text) when tokenizing with special=false
  };
  std::vector<Node> nodes{Node{}};
  std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> node
  bool first_byte[256] = {};

  void add(std::string_view s, TokenId id, bool special) {
    if (s.empty()) return;
    int32_t node = 0;
    for (unsigned char c : s) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto it = edges.find(key);
      if (it == edges.end()) {
        nodes.push_back(Node{});
        it = edges.emplace(key, static_cast<int32_t>(nodes.size() - 1)).first;
      }
      node = it->second;
    }
    if (nodes[node].token < 0) {  // the first token with this text wins
      nodes[node].token = id;
      nodes[node].special = special;
    }
    first_byte[static_cast<unsigned char>(s[0])] = true;
  }

  // Longest token starting at text[i]: its length (0 if none) and node.
  size_t longest_at(std::string_view text, size_t i, const Node** found) const {
    size_t best = 0;
    int32_t node = 0;
    for (size_t k = i; k < text.size(); ++k) {
      auto it = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[k]));
      if (it == edges.end()) break;
      node = it->second;
      if (nodes[node].token >= 0) {
        best = k + 1 - i;
        *found = &nodes[node];
      }
    }
    return best;
  }
};

Tokenizer::~Tokenizer() = default;

// ---- loading ---------------------------------------------------------------------------------

std::shared_ptr<Tokenizer> Tokenizer::from_gguf(const GGUFFile& f) {
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  t->impl_ = std::make_unique<Impl>();
  if (!f.find("tokenizer.ggml.model")) throw GGUFError("the file has no tokenizer (tokenizer.ggml.model is missing)");
  t->model_name_ = f.get_string("tokenizer.ggml.model");
  if (t->model_name_ == "gemma4") {
    t->model_ = TokenizerModel::GEMMA4_BPE;
  } else if (t->model_name_ == "llama") {
    t->model_ = TokenizerModel::SENTENCEPIECE;
  } else {
    throw GGUFError("unsupported tokenizer model '" + t->model_name_ +
                    "' (tokenizer.ggml.model); this engine reads 'gemma4' and 'llama' vocabularies");
  }

  const GGUFValue& toks = f.get_array("tokenizer.ggml.tokens");
  if (toks.elem_type != GGUFValueType::STRING) throw GGUFError("tokenizer.ggml.tokens is not an array of strings");
  const size_t n = toks.strings.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) throw GGUFError("tokenizer.ggml.tokens has an invalid length");
  t->tokens_.reserve(n);
  for (std::string_view s : toks.strings) t->tokens_.emplace_back(s);

  t->types_.assign(n, TokenType::NORMAL);
  if (const GGUFValue* v = f.find("tokenizer.ggml.token_type")) {
    if (!v->is_array() || v->count != n || v->elems == nullptr) {
      throw GGUFError("tokenizer.ggml.token_type must be a numeric array with one entry per token");
    }
    for (size_t i = 0; i < n; ++i) t->types_[i] = static_cast<TokenType>(v->elem_int(i));
  }
  t->scores_.assign(n, 0.0f);
  if (const GGUFValue* v = f.find("tokenizer.ggml.scores")) {
    if (!v->is_array() || v->count != n || v->elems == nullptr) {
      throw GGUFError("tokenizer.ggml.scores must be a numeric array with one entry per token");
    }
    for (size_t i = 0; i < n; ++i) t->scores_[i] = static_cast<float>(v->elem_float(i));
  }

  // Text -> id for the model's own vocabulary. A text stored twice keeps the id of its first
  // ordinary (normal/byte) entry; control and user-defined entries are reached through the
  // special-token matcher instead.
  t->token_to_id_.reserve(n * 2);
  for (size_t pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < n; ++i) {
      const TokenType ty = t->types_[i];
      const bool ordinary = ty == TokenType::NORMAL || ty == TokenType::BYTE || ty == TokenType::UNUSED ||
                            ty == TokenType::UNDEFINED;
      if (ordinary == (pass == 0)) t->token_to_id_.emplace(t->tokens_[i], static_cast<TokenId>(i));
    }
  }

  for (int c = 0; c < 128; ++c) {
    const char ch = static_cast<char>(c);
    const auto it = t->token_to_id_.find(std::string_view(&ch, 1));
    t->ascii_ids_[c] = it == t->token_to_id_.end() ? -1 : it->second;
  }
  std::fill(std::begin(t->byte_ids_), std::end(t->byte_ids_), -1);
  t->byte_of_token_.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const int b = parse_byte_token(t->tokens_[i]);
    if (b < 0) continue;
    t->byte_of_token_[i] = static_cast<int16_t>(b);
    // Byte fallback looks up the upper-case spelling "<0xAB>", as HF does.
    char name[16];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (t->tokens_[i] == name && t->byte_ids_[b] < 0) t->byte_ids_[b] = static_cast<TokenId>(i);
  }

  // Special ids.
  auto special_id = [&](const char* key) -> TokenId {
    const GGUFValue* v = f.find(key);
    if (!v) return -1;
    const uint64_t id = f.get_uint(key);
    if (id >= n) throw GGUFError(std::string(key) + " = " + std::to_string(id) + " is not a token id (vocabulary has " +
                                 std::to_string(n) + " tokens)");
    return static_cast<TokenId>(id);
  };
  t->bos_id_ = special_id("tokenizer.ggml.bos_token_id");
  t->eos_id_ = special_id("tokenizer.ggml.eos_token_id");
  t->unk_id_ = special_id("tokenizer.ggml.unknown_token_id");
  t->pad_id_ = special_id("tokenizer.ggml.padding_token_id");
  t->mask_id_ = special_id("tokenizer.ggml.mask_token_id");
  t->add_bos_ = f.get_bool_or("tokenizer.ggml.add_bos_token", true);
  if (f.get_bool_or("tokenizer.ggml.add_space_prefix", false)) {
    // Gemma vocabularies never set it; a leading-space scheme would change every id silently.
    throw GGUFError("tokenizer.ggml.add_space_prefix = true is not supported (Gemma vocabularies set it false)");
  }
  t->chat_template_ = f.get_string_or("tokenizer.chat_template", "");

  if (t->eos_id_ >= 0) t->eog_ids_.push_back(t->eos_id_);
  for (const char* s : kEndOfGenerationTexts) {
    for (size_t i = 0; i < n; ++i) {
      if (t->tokens_[i] == s && t->types_[i] != TokenType::NORMAL &&
          std::find(t->eog_ids_.begin(), t->eog_ids_.end(), static_cast<TokenId>(i)) == t->eog_ids_.end()) {
        t->eog_ids_.push_back(static_cast<TokenId>(i));
      }
    }
  }

  // Special-token matcher: control and user-defined tokens, cut out of the raw text.
  for (size_t i = 0; i < n; ++i) {
    const TokenType ty = t->types_[i];
    if (ty != TokenType::CONTROL && ty != TokenType::USER_DEFINED) continue;
    bool special = ty == TokenType::CONTROL;
    for (const char* s : kSpecialUserDefined) special = special || t->tokens_[i] == s;
    t->impl_->add(t->tokens_[i], static_cast<TokenId>(i), special);
  }

  // Merges, "left right". A part never holds a space in these vocabularies ("▁" stands for it),
  // but if one does, the split point is the one whose halves and whole are all tokens.
  if (const GGUFValue* v = f.find("tokenizer.ggml.merges")) {
    if (!v->is_array() || v->elem_type != GGUFValueType::STRING) {
      throw GGUFError("tokenizer.ggml.merges is not an array of strings");
    }
    t->merges_.reserve(v->strings.size() * 2);
    std::string joined;
    uint32_t rank = 0;
    for (std::string_view m : v->strings) {
      const uint32_t r = rank++;
      bool done = false;
      for (size_t sp = m.find(' '); sp != std::string_view::npos && !done; sp = m.find(' ', sp + 1)) {
        const auto l = t->token_to_id_.find(m.substr(0, sp));
        const auto rr = t->token_to_id_.find(m.substr(sp + 1));
        if (l == t->token_to_id_.end() || rr == t->token_to_id_.end()) continue;
        joined.assign(m.data(), sp);
        joined.append(m.data() + sp + 1, m.size() - sp - 1);
        const auto j = t->token_to_id_.find(joined);
        if (j == t->token_to_id_.end()) continue;
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                             static_cast<uint32_t>(rr->second);
        t->merges_.emplace(key, Merge{r, j->second});  // a repeated pair keeps its first rank
        done = true;
      }
    }
    t->n_merges_ = v->strings.size();
  }
  if (t->model_ == TokenizerModel::GEMMA4_BPE && t->merges_.empty()) {
    throw GGUFError("a gemma4 tokenizer needs tokenizer.ggml.merges, and this file has none that apply");
  }
  return t;
}

const std::string& Tokenizer::token_text(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) {
    throw Error("token id " + std::to_string(id) + " is out of range (vocabulary has " +
                std::to_string(tokens_.size()) + " tokens)");
  }
  return tokens_[id];
}

TokenType Tokenizer::token_type(TokenId id) const {
  token_text(id);  // range check
  return types_[id];
}

TokenId Tokenizer::find_token(std::string_view s) const {
  auto it = token_to_id_.find(s);
  if (it != token_to_id_.end()) return it->second;
  const Impl::Node* node = nullptr;
  if (impl_->longest_at(s, 0, &node) == s.size() && node) return node->token;
  return -1;
}

bool Tokenizer::is_eog(TokenId id) const {
  return std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

bool Tokenizer::is_byte_token(TokenId id, uint8_t* byte) const {
  const int b = byte_of_token_[id];
  if (b < 0) return false;
  *byte = static_cast<uint8_t>(b);
  return true;
}

// ---- encoding --------------------------------------------------------------------------------

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool add_bos, bool special) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos) {
    if (bos_id_ < 0) throw Error("add_bos was requested but the vocabulary has no BOS token");
    out.push_back(bos_id_);
  }
  // Cut out added tokens, leftmost-longest, then encode the text between them. A special token
  // skipped with special=false stays text, and the scan resumes after it (HF does the same).
  size_t plain_start = 0, i = 0;
  while (i < text.size()) {
    if (!impl_->first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    const Impl::Node* node = nullptr;
    const size_t len = impl_->longest_at(text, i, &node);
    if (len == 0) {
      ++i;
      continue;
    }
    if (node->special && !special) {
      i += len;
      continue;
    }
    encode_plain(text.substr(plain_start, i - plain_start), out);
    out.push_back(node->token);
    i += len;
    plain_start = i;
  }
  encode_plain(text.substr(plain_start), out);
  return out;
}

void Tokenizer::encode_plain(std::string_view text, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  // Normalizer: " " -> "▁".
  std::string norm;
  norm.reserve(text.size() + text.size() / 4);
  for (char c : text) {
    if (c == ' ') {
      norm += kSpaceMarker;
    } else {
      norm += c;
    }
  }
  const std::string_view s(norm);
  if (model_ == TokenizerModel::SENTENCEPIECE) {
    encode_spm_word(s, out);
    return;
  }
  // gemma4 pre-tokenizer: runs of '\n' and runs of everything else.
  size_t start = 0;
  while (start < s.size()) {
    const bool nl = s[start] == '\n';
    size_t end = start;
    while (end < s.size() && (s[end] == '\n') == nl) ++end;
    encode_bpe_word(s.substr(start, end - start), out);
    start = end;
  }
}

// Initial symbols of a word: one per UTF-8 character when the character is a token, else one per
// byte (byte fallback), else the unknown token (consecutive unknowns fused).
void Tokenizer::push_char_symbols(std::string_view word, std::vector<TokenId>& sym_id,
                                  std::vector<uint32_t>& sym_len) const {
  for (size_t i = 0; i < word.size();) {
    const uint8_t c0 = static_cast<uint8_t>(word[i]);
    if (c0 < 0x80 && ascii_ids_[c0] >= 0) {  // fast path: an ASCII character with a token
      sym_id.push_back(ascii_ids_[c0]);
      sym_len.push_back(1);
      ++i;
      continue;
    }
    size_t n = utf8_sequence_length(word, i);
    if (n == 0) n = 1;  // a stray byte is its own "character"; it can only fall back to bytes
    const auto it = token_to_id_.find(word.substr(i, n));
    if (it != token_to_id_.end()) {
      sym_id.push_back(it->second);
      sym_len.push_back(static_cast<uint32_t>(n));
    } else {
      bool all = true;
      for (size_t k = 0; k < n; ++k) all = all && byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (all) {
        for (size_t k = 0; k < n; ++k) {
          sym_id.push_back(byte_ids_[static_cast<uint8_t>(word[i + k])]);
          sym_len.push_back(1);
        }
      } else {
        if (unk_id_ < 0) throw Error("text has a character with no token, no byte token and no unknown token");
        if (!sym_id.empty() && sym_id.back() == unk_id_) {
          sym_len.back() += static_cast<uint32_t>(n);
        } else {
          sym_id.push_back(unk_id_);
          sym_len.push_back(static_cast<uint32_t>(n));
        }
      }
    }
    i += n;
  }
}

namespace {
struct Symbols {
  std::vector<TokenId> id;
  std::vector<uint32_t> len;
  std::vector<int32_t> prev, next;
  std::vector<uint32_t> start;  // byte offset in the word
  void clear() {
    id.clear();
    len.clear();
    prev.clear();
    next.clear();
    start.clear();
  }
  void link() {
    const size_t n = id.size();
    prev.resize(n);
    next.resize(n);
    start.resize(n);
    uint32_t off = 0;
    for (size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
      start[i] = off;
      off += len[i];
    }
  }
};

// A candidate pair: the lower key pops first (rank or negated score, then left position).
struct Candidate {
  uint64_t key;  // (priority << 32) | position
  TokenId merged;
  bool operator>(const Candidate& o) const { return key > o.key; }
};
using MinQueue = std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>>;

// Scores are floats; map them to an order-preserving unsigned key where a higher score pops first.
uint32_t score_priority(float score) {
  uint32_t bits;
  std::memcpy(&bits, &score, sizeof(bits));
  // IEEE-754 -> unsigned with the same order as the floats, then invert so higher scores are smaller.
  const uint32_t ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return ~ordered;
}
}  // namespace

// HF BPE (tokenizers `Word::merge_all`): merge the pair with the lowest rank, leftmost first,
// until no adjacent pair has a merge.
void Tokenizer::encode_bpe_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  // A run of newlines that is itself a token stays whole (llama.cpp does the same for gemma4;
  // HF's merges produce the same token for the runs its vocabulary holds).
  if (word[0] == '\n') {
    const auto it = token_to_id_.find(word);
    if (it != token_to_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local Symbols sy;
  sy.clear();
  push_char_symbols(word, sy.id, sy.len);
  if (sy.id.size() == 1) {
    out.push_back(sy.id[0]);
    return;
  }
  sy.link();
  MinQueue queue;
  auto consider = [&](int32_t pos) {
    const int32_t nx = sy.next[pos];
    if (nx < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(sy.id[pos])) << 32) |
                         static_cast<uint32_t>(sy.id[nx]);
    const auto it = merges_.find(key);
    if (it == merges_.end()) return;
    queue.push(Candidate{(static_cast<uint64_t>(it->second.rank) << 32) | static_cast<uint32_t>(pos), it->second.merged});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sy.id.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int32_t pos = static_cast<int32_t>(top.key & 0xFFFFFFFFu);
    if (sy.len[pos] == 0) continue;  // absorbed into its left neighbour
    const int32_t nx = sy.next[pos];
    if (nx < 0) continue;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(sy.id[pos])) << 32) |
                         static_cast<uint32_t>(sy.id[nx]);
    const auto it = merges_.find(key);
    if (it == merges_.end() || it->second.merged != top.merged) continue;  // stale entry
    sy.id[pos] = top.merged;
    sy.len[pos] += sy.len[nx];
    sy.len[nx] = 0;
    sy.next[pos] = sy.next[nx];
    if (sy.next[nx] >= 0) sy.prev[sy.next[nx]] = pos;
    if (sy.prev[pos] >= 0) consider(sy.prev[pos]);
    consider(pos);
  }
  for (int32_t i = 0; i >= 0; i = sy.next[i]) out.push_back(sy.id[i]);
}

// SentencePiece BPE (llama.cpp's llm_tokenizer_spm): join the adjacent pair whose joined text is
// the ordinary token with the highest score, leftmost on ties.
void Tokenizer::encode_spm_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  thread_local Symbols sy;
  sy.clear();
  // Symbols start as single characters (ids resolved at the end).
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8_sequence_length(word, i);
    if (n == 0) n = 1;
    sy.id.push_back(-1);
    sy.len.push_back(static_cast<uint32_t>(n));
    i += n;
  }
  sy.link();
  MinQueue queue;
  auto lookup = [&](uint32_t start, uint32_t len) -> TokenId {
    const auto it = token_to_id_.find(word.substr(start, len));
    if (it == token_to_id_.end() || types_[it->second] != TokenType::NORMAL) return -1;
    return it->second;
  };
  auto consider = [&](int32_t pos) {
    const int32_t nx = sy.next[pos];
    if (nx < 0) return;
    const TokenId id = lookup(sy.start[pos], sy.len[pos] + sy.len[nx]);
    if (id < 0) return;
    queue.push(Candidate{(static_cast<uint64_t>(score_priority(scores_[id])) << 32) | static_cast<uint32_t>(pos), id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sy.id.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int32_t pos = static_cast<int32_t>(top.key & 0xFFFFFFFFu);
    if (sy.len[pos] == 0) continue;
    const int32_t nx = sy.next[pos];
    if (nx < 0) continue;
    if (lookup(sy.start[pos], sy.len[pos] + sy.len[nx]) != top.merged) continue;  // stale
    sy.len[pos] += sy.len[nx];
    sy.len[nx] = 0;
    sy.next[pos] = sy.next[nx];
    if (sy.next[nx] >= 0) sy.prev[sy.next[nx]] = pos;
    if (sy.prev[pos] >= 0) consider(sy.prev[pos]);
    consider(pos);
  }
  thread_local std::vector<TokenId> ids;
  thread_local std::vector<uint32_t> lens;
  for (int32_t i = 0; i >= 0; i = sy.next[i]) {
    const std::string_view piece = word.substr(sy.start[i], sy.len[i]);
    const auto it = token_to_id_.find(piece);
    if (it != token_to_id_.end()) {
      out.push_back(it->second);
    } else {
      ids.clear();
      lens.clear();
      push_char_symbols(piece, ids, lens);  // byte fallback
      out.insert(out.end(), ids.begin(), ids.end());
    }
  }
}

}  // namespace dg
