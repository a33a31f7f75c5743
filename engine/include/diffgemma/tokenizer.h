// The text <-> token id mapping, built from GGUF metadata alone.
//
// Two tokenizer models are supported:
//
// - "gemma4" (DiffusionGemma, Gemma 4): BPE over raw UTF-8 characters with merge ranks from
//   `tokenizer.ggml.merges`. Mirrors HF `tokenizers` on Gemma 4's tokenizer.json: special and
//   user-defined tokens are cut out of the raw text first (leftmost-longest), spaces become U+2581
//   ("▁"), the rest is split into runs of newlines and runs of everything else, each run is merged
//   lowest-rank-first (leftmost on ties), and a character with no token falls back to `<0xXX>`
//   byte tokens. A run of newlines that is itself a token is taken whole (as llama.cpp does; HF's
//   merges give the same token).
// - "llama" (SentencePiece vocabularies, e.g. Gemma 3): the same cutting (which also takes Gemma 3's
//   user-defined space runs, stored with real spaces, off the raw text) and space escaping, then
//   SentencePiece-BPE: repeatedly join the adjacent pair whose joined text is the token with the
//   highest score (leftmost on ties), with the same byte fallback.
//
// Detokenization turns "▁" back into spaces and reassembles byte-fallback runs into UTF-8 as HF's
// ByteFallback decoder does (a run that is not valid UTF-8 becomes one U+FFFD per byte token).
//
// Where llama.cpp and HF differ, this follows HF `tokenizers` (what the model was trained with):
// - added tokens are cut leftmost-longest (HF's aho-corasick), not longest-token-first over the
//   whole text as llama.cpp's special-token partition does;
// - BOS is added when the caller asks (default: tokenizer.ggml.add_bos_token); llama.cpp forces it
//   on for gemma4 files;
// - with special=false, the Gemma 4 markers that the GGUF types USER_DEFINED (<|channel>,
//   <|tool_call>, <|"|>, ...) are plain text, as they are special tokens in HF.
// Kept from llama.cpp, because the GGUF cannot say otherwise: with render_special=false those
// USER_DEFINED markers are still rendered (HF's skip_special_tokens would hide them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dg {

class GGUFFile;

using TokenId = int32_t;

// llama.cpp / gguf-py token types (`tokenizer.ggml.token_type`).
enum class TokenType : int32_t {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
};

enum class TokenizerModel { GEMMA4_BPE, SENTENCEPIECE };

class Tokenizer {
 public:
  // Reads tokens, types, scores, merges, special ids, flags and the chat template from the file.
  // Throws dg::GGUFError when the tokenizer metadata is missing or inconsistent.
  static std::shared_ptr<Tokenizer> from_gguf(const GGUFFile& file);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text (UTF-8; invalid bytes are encoded with byte fallback) to ids.
  //   add_bos: prepend the BOS id.
  //   special: cut control and user-defined tokens out of the text as whole tokens (as HF does for
  //     its added tokens). false treats the text as plain text: only user-defined tokens that
  //     the reference treats as ordinary added tokens (not special ones) are still matched, as with
  //     HF's `encode_special_tokens`.
  std::vector<TokenId> tokenize(std::string_view text, bool add_bos, bool special = true) const;

  // Ids to UTF-8 text. render_special: also render CONTROL tokens (e.g. "<bos>"); user-defined
  // tokens (e.g. "<|channel>") are always rendered. Out-of-range ids throw dg::Error.
  std::string detokenize(const std::vector<TokenId>& ids, bool render_special = false) const;

  // The raw bytes one token stands for: "▁" as a space, a byte token as its byte, a control
  // token as its text when render_special, else "".
  std::string token_to_piece(TokenId id, bool render_special = false) const;

  size_t n_vocab() const { return tokens_.size(); }
  TokenizerModel model() const { return model_; }
  const std::string& model_name() const { return model_name_; }  // tokenizer.ggml.model
  const std::string& token_text(TokenId id) const;                // as stored, "▁" included
  TokenType token_type(TokenId id) const;
  TokenId find_token(std::string_view text) const;  // -1 if absent

  TokenId bos_id() const { return bos_id_; }  // -1 when the file has none
  TokenId eos_id() const { return eos_id_; }
  TokenId unk_id() const { return unk_id_; }
  TokenId pad_id() const { return pad_id_; }
  TokenId mask_id() const { return mask_id_; }
  bool add_bos_default() const { return add_bos_; }  // tokenizer.ggml.add_bos_token (default true)
  // End of generation: eos, plus "<turn|>", "<|tool_response>", "<end_of_turn>", "<eos>" when
  // present (gguf-layout.md §3.2: {1, 106, 50} for DiffusionGemma).
  bool is_eog(TokenId id) const;
  const std::vector<TokenId>& eog_ids() const { return eog_ids_; }
  const std::string& chat_template() const { return chat_template_; }  // "" when absent

  size_t n_merges() const { return n_merges_; }

 private:
  Tokenizer() = default;
  struct Impl;
  friend class StreamingDetokenizer;

  // Appends the ids of `text`, which contains no special token.
  void encode_plain(std::string_view text, std::vector<TokenId>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<TokenId>& out) const;
  void encode_spm_word(std::string_view word, std::vector<TokenId>& out) const;
  void push_char_symbols(std::string_view word, std::vector<TokenId>& sym_id,
                         std::vector<uint32_t>& sym_len) const;
  bool is_byte_token(TokenId id, uint8_t* byte) const;

  TokenizerModel model_ = TokenizerModel::GEMMA4_BPE;
  std::string model_name_;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, TokenId> token_to_id_;
  TokenId byte_ids_[256];   // <0xXX> token of each byte, -1 if absent
  TokenId ascii_ids_[128];  // token of each single ASCII character, -1 if absent
  std::vector<int16_t> byte_of_token_;  // -1, or the byte a BYTE token stands for

  // BPE merges: (left id << 32 | right id) -> (rank, merged id).
  struct Merge {
    uint32_t rank;
    TokenId merged;
  };
  std::unordered_map<uint64_t, Merge> merges_;
  size_t n_merges_ = 0;

  std::unique_ptr<Impl> impl_;  // special-token matcher
  TokenId bos_id_ = -1, eos_id_ = -1, unk_id_ = -1, pad_id_ = -1, mask_id_ = -1;
  bool add_bos_ = true;
  std::vector<TokenId> eog_ids_;
  std::string chat_template_;
};

// Incremental detokenizer for streamed output (one canvas after another). Each push returns only
// complete UTF-8, never part of a character: the bytes of a run of byte-fallback tokens are held
// until the run ends (at the next other token, or flush()), because HF's ByteFallback decides per
// whole run whether it is valid UTF-8 (else one U+FFFD per byte). So the concatenation of all
// pushes and the final flush() equals Tokenizer::detokenize over all ids, also for broken input.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool render_special = false);
  std::string push(TokenId id);
  std::string push(const std::vector<TokenId>& ids);
  std::string flush();  // whatever is held, invalid bytes as U+FFFD; then resets
  bool pending() const { return !held_.empty(); }

 private:
  std::shared_ptr<const Tokenizer> tok_;
  bool render_special_;
  std::string held_;  // bytes of the current run of byte tokens
};

}  // namespace dg
