// diffgemma-cli --tokenize: the ids of a prompt under the model's tokenizer.
#pragma once

#include <cstdio>
#include <string>

namespace dgcli {

struct TokenizeOptions {
  bool add_bos = true;   // BOS as tokenizer.ggml.add_bos_token says; --no-bos turns it off
  bool special = true;   // --no-special: the prompt is plain text ("<|turn>" is not one token)
  bool json = false;     // {"ids": [...], "pieces": [...]} instead of one id per line
  bool chat = false;     // render the prompt as a user turn with the model's chat template first
  bool think = false;    // with chat: enable_thinking
};

// Tokenizes `text` with the tokenizer of the GGUF at `model_path` and prints the result.
// Throws dg::Error (bad file, no tokenizer).
void tokenize_prompt(const std::string& model_path, const std::string& text, const TokenizeOptions& opt,
                     std::FILE* out);

// The whole of a file, or of stdin for "-". Throws dg::Error when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace dgcli
