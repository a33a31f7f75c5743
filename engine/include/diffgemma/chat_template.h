// Native chat formatting for the CLI and the Python API.
//
// The GGUF carries the HF Jinja template (`tokenizer.chat_template`). Rather than embed a Jinja
// interpreter, the engine recognizes the template's format from its text and renders that format
// natively, byte-for-byte as jinja2 renders the template under transformers' settings
// (trim_blocks, lstrip_blocks, reasoning fields aliased as transformers' apply_chat_template does).
// A template it does not recognize is a clear dg::Error, never a silently different prompt.
//
// Known formats:
//   GEMMA4: the Gemma 4 / DiffusionGemma template ("Google Gemma 4 Canonical Chat Template",
//     2026-07-09, as shipped in trl's `diffusion_gemma.jinja`): bos, optional system turn with
//     `<|think|>` and tool declarations, `<|turn>ROLE\n…<turn|>\n`, thinking channels,
//     tool calls/responses with `<|"|>`-quoted strings, generation prompt `<|turn>model\n`.
//   GEMMA4_RELEASE: the revision published with DiffusionGemma (2026-06, trl commit 4401011): the
//     generation prompt adds an empty thought channel `<|channel>thought\n<channel|>` unless
//     enable_thinking; thinking is rendered only on tool-calling turns after the last user turn;
//     string tool-call arguments are pasted verbatim; None prints as "None"; no preserve_thinking.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dg {

class Tokenizer;

// A JSON-like value: what chat messages and tool schemas are made of. Objects keep their
// insertion order (templates sort keys themselves where they need to).
class ChatValue {
 public:
  enum class Kind { NONE, BOOL, INT, FLOAT, STRING, ARRAY, OBJECT };

  ChatValue() = default;
  explicit ChatValue(bool b) : kind_(Kind::BOOL), b_(b) {}
  explicit ChatValue(int64_t i) : kind_(Kind::INT), i_(i) {}
  explicit ChatValue(int i) : kind_(Kind::INT), i_(i) {}
  explicit ChatValue(double d) : kind_(Kind::FLOAT), d_(d) {}
  explicit ChatValue(std::string s) : kind_(Kind::STRING), s_(std::move(s)) {}
  explicit ChatValue(const char* s) : kind_(Kind::STRING), s_(s) {}
  static ChatValue array() { ChatValue v; v.kind_ = Kind::ARRAY; return v; }
  static ChatValue object() { ChatValue v; v.kind_ = Kind::OBJECT; return v; }

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::NONE; }
  bool is_bool() const { return kind_ == Kind::BOOL; }
  bool is_string() const { return kind_ == Kind::STRING; }
  bool is_array() const { return kind_ == Kind::ARRAY; }
  bool is_object() const { return kind_ == Kind::OBJECT; }
  bool is_number() const { return kind_ == Kind::INT || kind_ == Kind::FLOAT; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_float() const { return kind_ == Kind::INT ? static_cast<double>(i_) : d_; }
  const std::string& as_string() const { return s_; }
  const std::vector<ChatValue>& items() const { return items_; }                       // ARRAY
  const std::vector<std::pair<std::string, ChatValue>>& members() const { return members_; }  // OBJECT

  // OBJECT member, or nullptr (also for non-objects), like a Jinja lookup that is undefined.
  const ChatValue* get(const std::string& key) const;
  void set(std::string key, ChatValue v);  // replaces an existing key in place
  void push(ChatValue v) { items_.push_back(std::move(v)); }

  // Python truthiness: None, False, 0, 0.0, "", [] and {} are false.
  bool truthy() const;

 private:
  Kind kind_ = Kind::NONE;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0.0;
  std::string s_;
  std::vector<ChatValue> items_;
  std::vector<std::pair<std::string, ChatValue>> members_;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = false;
  bool preserve_thinking = false;
  std::string bos_token = "<bos>";
};

class ChatTemplate {
 public:
  enum class Format { GEMMA4, GEMMA4_RELEASE };

  // Recognizes the format of a Jinja chat template from its text. An empty template (a GGUF
  // without one) means GEMMA4, the format of every DiffusionGemma checkpoint. Anything else that
  // is not recognized throws dg::Error naming the problem.
  static ChatTemplate detect(const std::string& jinja_template);
  static ChatTemplate gemma4() { return ChatTemplate(Format::GEMMA4); }
  // The format for a model: its embedded template recognized by detect(); a model without a
  // template gets GEMMA4 only when its vocabulary has the Gemma 4 turn tokens, else dg::Error.
  static ChatTemplate for_model(const Tokenizer& tok);
  // A format by name: "gemma4" or "gemma4-release" (the names name() returns).
  static ChatTemplate from_name(const std::string& name);

  Format format() const { return format_; }
  const char* name() const;

  // messages: an array of objects with "role", "content" (string or content parts), optional
  // "reasoning"/"reasoning_content"/"thinking", "tool_calls", "tool_responses", "tool_call_id",
  // "name". tools: NONE or an array of OpenAI-style {"type":"function","function":{...}}.
  // Throws dg::Error for input the template itself rejects (e.g. string tool-call arguments).
  std::string render(const ChatValue& messages, const ChatValue& tools, const ChatOptions& opt) const;

 private:
  explicit ChatTemplate(Format f) : format_(f) {}
  Format format_;
};

}  // namespace dg
