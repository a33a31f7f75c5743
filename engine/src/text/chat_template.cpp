// Native renderer of the Gemma 4 / DiffusionGemma chat template. Each function below mirrors the
// macro or block of `diffusion_gemma.jinja` it is named after, including its quirks (a
// `parameters:{` that is closed only when the schema has a "type", `tool_call_id` matching when
// both ids are missing, ...), so that the output equals jinja2's byte for byte. Python semantics
// the template relies on are spelled out: str.strip() whitespace, str() of numbers, dictsort's
// case-insensitive key order, `or` returning an operand.
#include "diffgemma/chat_template.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "diffgemma/error.h"
#include "diffgemma/tokenizer.h"
#include "text/chat_value_ops.h"
#include "text/utf8.h"

namespace dg {

using namespace text;  // the Python-semantics helpers of chat_value_ops.h

namespace {

const std::string kQ = "<|\"|>";  // the template's string delimiter token

std::string join_quoted(const ChatValue* list) {
  // `{%- for item in list -%}<|"|>{{- item -}}<|"|>{%- if not loop.last %},{% endif -%}{%- endfor -%}`
  std::string out;
  if (!list) return out;
  if (list->is_array()) {
    for (size_t i = 0; i < list->items().size(); ++i) {
      if (i) out += ",";
      out += kQ + py_str(list->items()[i]) + kQ;
    }
  } else if (list->is_object()) {
    size_t i = 0;
    for (const auto& m : list->members()) out += (i++ ? "," : "") + kQ + m.first + kQ;
  } else if (list->is_string()) {
    // iterating a string yields its characters
    const std::string& s = list->as_string();
    bool first = true;
    for (size_t k = 0; k < s.size();) {
      size_t n = utf8_sequence_length(s, k);
      if (n == 0) n = 1;
      out += (first ? "" : ",") + kQ + s.substr(k, n) + kQ;
      first = false;
      k += n;
    }
  }
  return out;
}

// ---- macros ----------------------------------------------------------------------------------

// `none_as_null`: the canonical template prints None as `null`; the release one has no such branch
// and prints Python's "None".
std::string format_argument(const ChatValue* arg, bool escape_keys, bool none_as_null = true) {
  if (!arg) return "[]";  // an undefined value passes Jinja's `sequence` test and iterates as empty
  switch (arg->kind()) {
    case ChatValue::Kind::NONE: return none_as_null ? "null" : "None";
    case ChatValue::Kind::STRING: return kQ + arg->as_string() + kQ;
    case ChatValue::Kind::BOOL: return arg->as_bool() ? "true" : "false";
    case ChatValue::Kind::OBJECT: {
      std::string out = "{";
      bool first = true;
      for (const auto* m : dictsort(*arg)) {
        if (!first) out += ",";
        first = false;
        out += escape_keys ? kQ + m->first + kQ : m->first;
        out += ":" + format_argument(&m->second, escape_keys, none_as_null);
      }
      return out + "}";
    }
    case ChatValue::Kind::ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < arg->items().size(); ++i) {
        if (i) out += ",";
        out += format_argument(&arg->items()[i], escape_keys, none_as_null);
      }
      return out + "]";
    }
    default: return py_str(*arg);
  }
}

std::string format_parameters(const ChatValue& properties, bool filter_keys, bool rel);

// `{%- if add_comma %},{%- else -%}{%- set add_comma = true -%}{% endif -%}`
void comma(std::string& out, bool& add_comma) {
  if (add_comma) {
    out += ",";
  } else {
    add_comma = true;
  }
}

std::string format_parameters(const ChatValue& properties, bool filter_keys, bool rel) {
  static const char* kStandardKeys[] = {"description", "type", "properties", "required", "nullable"};
  std::string out;
  if (!properties.is_object()) return out;
  bool found_first = false;
  for (const auto* kv : dictsort(properties)) {
    const std::string& key = kv->first;
    const ChatValue& value = kv->second;
    bool add_comma = false;
    bool standard = false;
    for (const char* s : kStandardKeys) standard = standard || key == s;
    if (filter_keys && standard) continue;
    if (found_first) out += ",";
    found_first = true;
    out += key + ":{";
    if (truthy(value.get("description"))) {
      out += "description:" + kQ + py_str(*value.get("description")) + kQ;
      add_comma = true;
    }
    const std::string type = upper_of(value.get("type"));
    if (type == "STRING") {
      if (truthy(value.get("enum"))) {
        comma(out, add_comma);
        out += "enum:" + format_argument(value.get("enum"), true, !rel);
      }
    } else if (type == "ARRAY") {
      const ChatValue* items = value.get("items");
      if (items && items->is_object() && items->truthy()) {
        comma(out, add_comma);
        out += "items:{";
        bool items_first = false;
        for (const auto* ikv : dictsort(*items)) {
          const std::string& item_key = ikv->first;
          const ChatValue& item_value = ikv->second;
          if (item_value.is_none()) continue;
          if (items_first) out += ",";
          items_first = true;
          if (item_key == "properties") {
            out += "properties:{";
            if (item_value.is_object()) out += format_parameters(item_value, false, rel);
            out += "}";
          } else if (item_key == "required") {
            out += "required:[" + join_quoted(&item_value) + "]";
          } else if (item_key == "type") {
            if (item_value.is_string()) {
              const ChatValue up(ascii_upper(item_value.as_string()));
              out += "type:" + format_argument(&up, true, !rel);
            } else {
              ChatValue ups = ChatValue::array();
              if (item_value.is_array()) {
                for (const auto& e : item_value.items()) ups.push(ChatValue(ascii_upper(py_str(e))));
              } else if (item_value.is_object()) {
                for (const auto& m : item_value.members()) ups.push(ChatValue(ascii_upper(m.first)));
              } else {
                throw Error("chat template: an items 'type' must be a string or a list");
              }
              out += "type:" + format_argument(&ups, true, !rel);
            }
          } else {
            out += item_key + ":" + format_argument(&item_value, true, !rel);
          }
        }
        out += "}";
      }
    }
    if (truthy(value.get("nullable"))) {
      comma(out, add_comma);
      out += "nullable:true";
    }
    if (type == "OBJECT") {
      const ChatValue* props = value.get("properties");
      if (props && props->is_object()) {
        comma(out, add_comma);
        out += "properties:{" + format_parameters(*props, false, rel) + "}";
      } else if (value.is_object()) {
        comma(out, add_comma);
        out += "properties:{" + format_parameters(value, true, rel) + "}";
      }
      if (truthy(value.get("required"))) {
        comma(out, add_comma);
        out += "required:[" + join_quoted(value.get("required")) + "]";
      }
    }
    comma(out, add_comma);
    out += "type:" + kQ + type + kQ + "}";
  }
  return out;
}

const ChatValue& need(const ChatValue* v, const char* what) {
  if (!v) throw Error(std::string("chat template: ") + what + " is missing");
  return *v;
}

std::string need_string(const ChatValue* v, const char* what) {
  if (!v || !v->is_string()) throw Error(std::string("chat template: ") + what + " must be a string");
  return v->as_string();
}

std::string format_function_declaration(const ChatValue& tool, bool rel) {
  const ChatValue& fn = need(tool.get("function"), "a tool's 'function'");
  std::string out = "declaration:" + str_of(fn.get("name")) + "{description:" + kQ + str_of(fn.get("description")) + kQ;
  const ChatValue* params = fn.get("parameters");
  if (truthy(params)) {
    out += ",parameters:{";
    const ChatValue* props = params->get("properties");
    if (truthy(props)) out += "properties:{" + format_parameters(*props, false, rel) + "},";
    if (truthy(params->get("required"))) out += "required:[" + join_quoted(params->get("required")) + "],";
    if (truthy(params->get("type"))) out += "type:" + kQ + upper_of(params->get("type")) + kQ + "}";
  }
  if (fn.get("response")) {
    const ChatValue* rd = fn.get("response");
    out += ",response:{";
    if (truthy(rd->get("description"))) out += "description:" + kQ + py_str(*rd->get("description")) + kQ + ",";
    if (upper_of(rd->get("type")) == "OBJECT") out += "type:" + kQ + upper_of(rd->get("type")) + kQ + "}";
  }
  return out + "}";
}

std::string strip_thinking(const std::string& text) {
  static const std::string kEnd = "<channel|>", kStart = "<|channel>";
  std::string result;
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(kEnd, pos);
    const std::string part = text.substr(pos, hit == std::string::npos ? std::string::npos : hit - pos);
    const size_t s = part.find(kStart);
    result += s == std::string::npos ? part : part.substr(0, s);
    if (hit == std::string::npos) break;
    pos = hit + kEnd.size();
  }
  return py_strip(result);
}

std::string format_tool_response_block(const std::string& tool_name, const ChatValue* response, bool rel) {
  std::string out = "<|tool_response>";
  if (response && response->is_object()) {
    out += "response:" + tool_name + "{";
    bool first = true;
    for (const auto* m : dictsort(*response)) {
      if (!first) out += ",";
      first = false;
      out += m->first + ":" + format_argument(&m->second, false, !rel);
    }
    out += "}";
  } else {
    out += "response:" + tool_name + "{value:" + format_argument(response, false, !rel) + "}";
  }
  return out + "<tool_response|>";
}

const char* media_placeholder(const ChatValue* type) {
  if (is_string_eq(type, "image") || is_string_eq(type, "image_url")) return "<|image|>";
  if (is_string_eq(type, "audio") || is_string_eq(type, "input_audio")) return "<|audio|>";
  if (is_string_eq(type, "video")) return "<|video|>";
  return nullptr;
}

// transformers' apply_chat_template fills `reasoning_content` from the first non-None of
// reasoning_content / thinking / reasoning before rendering.
const ChatValue* reasoning_content_of(const ChatValue& msg) {
  for (const char* k : {"reasoning_content", "thinking", "reasoning"}) {
    const ChatValue* v = msg.get(k);
    if (v && !v->is_none()) return v;
  }
  return msg.get("reasoning_content");
}

// The message loop of both revisions. `rel` selects the 2026-06 release template; where it differs
// from the 2026-07 canonical one the branch says so.
std::string render_gemma4(const ChatValue& messages, const ChatValue& tools, const ChatOptions& opt, bool rel) {
  if (!messages.is_array()) throw Error("chat messages must be a list");
  for (const auto& m : messages.items()) {
    if (!m.is_object()) throw Error("each chat message must be an object");
  }
  const std::vector<ChatValue>& all = messages.items();
  // release: `messages[0]['role']` is read unguarded, so an empty conversation is an error
  if (rel && all.empty()) throw Error("chat template: the conversation has no messages");
  std::string out = opt.bos_token;
  std::string prev_type;  // ns.prev_message_type ("" = None)
  const ChatValue* prev_non_tool_role = nullptr;

  const bool first_is_system = !all.empty() && (is_string_eq(all[0].get("role"), "system") ||
                                                  is_string_eq(all[0].get("role"), "developer"));
  size_t first = 0;
  if (opt.enable_thinking || tools.truthy() || first_is_system) {
    out += "<|turn>system\n";
    if (opt.enable_thinking) {
      out += "<|think|>\n";
      prev_type = "think";
    }
    if (first_is_system) {
      const ChatValue* c = all[0].get("content");
      if (c && c->is_string()) {
        out += py_strip(c->as_string());
      } else if (c && c->is_array()) {
        for (const auto& item : c->items()) out += py_strip(str_of(item.get("text"))) + " ";
      }
      first = 1;
    }
    if (tools.truthy()) {
      if (!tools.is_array()) throw Error("chat tools must be a list");
      for (const auto& tool : tools.items()) {
        out += "<|tool>" + py_strip(format_function_declaration(tool, rel)) + "<tool|>";
      }
      prev_type = "tool";
    }
    out += "<turn|>\n";
  }

  const size_t n = all.size() - first;
  auto msg = [&](size_t i) -> const ChatValue& { return all[first + i]; };
  long last_user = -1;
  for (size_t i = 0; i < n; ++i) {
    if (is_string_eq(msg(i).get("role"), "user")) last_user = static_cast<long>(i);
  }

  for (size_t idx = 0; idx < n; ++idx) {
    const ChatValue& m = msg(idx);
    const ChatValue* raw_role = m.get("role");
    if (!is_string_eq(raw_role, "tool")) {
      prev_type.clear();
      const std::string role = is_string_eq(raw_role, "assistant") ? "model" : need_string(raw_role, "a message's role");
      bool continue_same;
      if (rel) {  // the nearest earlier message that is not a tool message
        const ChatValue* prev_role = nullptr;
        for (size_t j = idx; j-- > 0;) {
          if (!is_string_eq(msg(j).get("role"), "tool")) {
            prev_role = msg(j).get("role");
            break;
          }
        }
        continue_same = role == "model" && is_string_eq(prev_role, "assistant");
      } else {  // the previous message, whatever its role
        continue_same = role == "model" && is_string_eq(prev_non_tool_role, "assistant");
      }
      if (!continue_same) out += "<|turn>" + role + "\n";

      const ChatValue* reasoning = m.get("reasoning");
      const ChatValue* thinking = truthy(reasoning) ? reasoning : reasoning_content_of(m);
      const ChatValue* tool_calls = m.get("tool_calls");
      const bool gate = rel ? (static_cast<long>(idx) > last_user && truthy(tool_calls))
                            : (static_cast<long>(idx) > last_user || (opt.preserve_thinking && truthy(tool_calls)));
      if (truthy(thinking) && gate) {
        out += "<|channel>thought\n" + need_string(thinking, "a message's reasoning") + "\n<channel|>";
      }

      if (truthy(tool_calls)) {
        if (!tool_calls->is_array()) throw Error("chat template: tool_calls must be a list");
        for (const auto& tc : tool_calls->items()) {
          const ChatValue& fn = need(tc.get("function"), "a tool call's 'function'");
          out += "<|tool_call>call:" + need_string(fn.get("name"), "a tool call's function name") + "{";
          const ChatValue* args = fn.get("arguments");
          if (args && args->is_object()) {
            bool firstarg = true;
            for (const auto* kv : dictsort(*args)) {
              if (!firstarg) out += ",";
              firstarg = false;
              out += kv->first + ":" + format_argument(&kv->second, false, !rel);
            }
          } else if (rel) {
            if (args && args->is_string()) out += args->as_string();  // release: a JSON string is pasted as is
          } else if (!(args && args->is_none())) {
            throw Error(
                "chat_template: tool_calls[].function.arguments must be a JSON object (mapping), not a string. "
                "Deserialize arguments before passing to the template.");
          }
          out += "}<tool_call|>";
        }
        prev_type = "tool_call";
      }

      bool tr_flag = false;
      const ChatValue* tool_responses = m.get("tool_responses");
      if (truthy(tool_responses)) {
        if (!tool_responses->is_array()) throw Error("chat template: tool_responses must be a list");
        for (const auto& tr : tool_responses->items()) {
          const ChatValue* name = tr.get("name");
          // canonical: `| default('unknown', true)` (any false value); release: `| default('unknown')` (missing only)
          const bool use_default = rel ? name == nullptr : !truthy(name);
          const std::string tname = use_default ? "unknown" : need_string(name, "a tool response's name");
          out += format_tool_response_block(tname, tr.get("response"), rel);
          tr_flag = true;
          prev_type = "tool_response";
        }
      } else if (truthy(tool_calls)) {
        for (size_t k = idx + 1; k < n; ++k) {
          const ChatValue& follow = msg(k);
          if (!is_string_eq(follow.get("role"), "tool")) break;
          const ChatValue* fname = follow.get("name");
          // canonical: `follow.get('name') or 'unknown'`; release: `follow.get('name') | default('unknown')`,
          // which keeps None (so a nameless, unmatched tool message is an error there)
          std::string tname;
          bool have_name = false;
          if (truthy(fname) || (rel && fname && !fname->is_none())) {
            tname = need_string(fname, "a tool message's name");
            have_name = true;
          } else if (!rel) {
            tname = "unknown";
            have_name = true;
          }
          for (const auto& tc : tool_calls->items()) {
            if (py_equal(tc.get("id"), follow.get("tool_call_id"))) {
              tname = need_string(need(tc.get("function"), "a tool call's 'function'").get("name"),
                                  "a tool call's function name");
              have_name = true;
            }
          }
          if (!have_name) throw Error("chat template: a tool message has no name and matches no tool call id");
          const ChatValue* body = follow.get("content");
          if (body && body->is_string()) {
            out += format_tool_response_block(tname, body, rel);
          } else if (body && body->is_array()) {
            std::string txt;
            for (const auto& part : body->items()) {
              if (is_string_eq(part.get("type"), "text")) {
                const ChatValue* t = part.get("text");
                txt += t ? need_string(t, "a text part's text") : "";
              }
            }
            const ChatValue txtv(txt);
            out += format_tool_response_block(tname, &txtv, rel);
            for (const auto& part : body->items()) {
              const ChatValue* ty = part.get("type");
              const char* ph = rel ? (is_string_eq(ty, "image")   ? "<|image|>"
                                      : is_string_eq(ty, "audio") ? "<|audio|>"
                                      : is_string_eq(ty, "video") ? "<|video|>"
                                                                  : nullptr)
                                   : media_placeholder(ty);
              if (ph) out += ph;
            }
          } else {
            static const ChatValue none;
            out += format_tool_response_block(tname, body ? body : &none, rel);
          }
          tr_flag = true;
          prev_type = "tool_response";
        }
      }

      std::string captured;
      const ChatValue* content = m.get("content");
      if (content && content->is_string()) {
        captured = role == "model" ? strip_thinking(content->as_string()) : py_strip(content->as_string());
      } else if (content && content->is_array()) {
        for (const auto& item : content->items()) {
          const ChatValue* ty = item.get("type");
          if (is_string_eq(ty, "text")) {
            const std::string t = need_string(item.get("text"), "a text part's text");
            captured += role == "model" ? strip_thinking(t) : py_strip(t);
          } else if (rel) {  // release: only these three, and each sets prev_message_type
            for (const char* kind : {"image", "audio", "video"}) {
              if (is_string_eq(ty, kind)) {
                captured += std::string("<|") + kind + "|>";
                prev_type = kind;
              }
            }
          } else if (const char* ph = media_placeholder(ty)) {
            captured += ph;
          }
        }
      }
      out += captured;
      const bool has_content = !py_strip(captured).empty();

      if (rel) {
        if (prev_type == "tool_call" && !tr_flag) {
          out += "<|tool_response>";
        } else if (!(tr_flag && !has_content)) {
          out += "<turn|>\n";
        }
      } else {
        const ChatValue* next_role = nullptr;
        bool next_found = false;
        for (size_t j = idx + 1; j < n; ++j) {
          if (!is_string_eq(msg(j).get("role"), "tool")) {
            next_role = msg(j).get("role");
            next_found = true;
            break;
          }
        }
        const bool continues_into_next =
            role == "model" && is_string_eq(next_role, "assistant") && (!truthy(tool_calls) || tr_flag);
        if (prev_type == "tool_call" && !tr_flag) {
          out += "<|tool_response>";
        } else if (continues_into_next) {
        } else if (!(tr_flag && !has_content && !next_found)) {
          out += "<turn|>\n";
        }
      }
    }
    prev_non_tool_role = raw_role;
  }

  if (opt.add_generation_prompt) {
    if (prev_type != "tool_response" && prev_type != "tool_call") {
      out += "<|turn>model\n";
      if (rel && !opt.enable_thinking) out += "<|channel>thought\n<channel|>";  // the empty thought channel
    } else if (!rel && prev_type == "tool_response" && opt.enable_thinking) {
      out += "<|channel>thought\n";
    }
  }
  return out;
}

}  // namespace

// ---- detection -------------------------------------------------------------------------------

ChatTemplate ChatTemplate::detect(const std::string& t) {
  if (t.empty()) return ChatTemplate(Format::GEMMA4);
  const bool gemma4_tokens = t.find("<|turn>") != std::string::npos && t.find("<turn|>") != std::string::npos;
  const bool declarations = t.find("format_function_declaration") != std::string::npos &&
                            t.find("format_tool_response_block") != std::string::npos;
  if (gemma4_tokens && declarations && t.find("prev_non_tool_role") != std::string::npos &&
      t.find("continues_into_next") != std::string::npos) {
    return ChatTemplate(Format::GEMMA4);
  }
  if (gemma4_tokens && declarations && t.find("prev_nt.role") != std::string::npos &&
      t.find("'<|channel>thought\\n<channel|>'") != std::string::npos) {
    return ChatTemplate(Format::GEMMA4_RELEASE);
  }
  if (gemma4_tokens) {
    throw Error(
        "this Gemma 4 chat template is a revision the native renderer does not know (it recognizes the "
        "2026-06 release and 2026-07 'Gemma 4 Canonical' templates); render it with jinja2 instead, or "
        "convert the model with one of those templates");
  }
  throw Error("the model's chat template is not a format the native renderer knows (it renders the Gemma 4 / "
              "DiffusionGemma format); render it with jinja2 instead");
}

ChatTemplate ChatTemplate::for_model(const Tokenizer& tok) {
  if (tok.chat_template().empty() && (tok.find_token("<|turn>") < 0 || tok.find_token("<turn|>") < 0)) {
    throw Error("the model has no chat template (tokenizer.chat_template) and its vocabulary has no Gemma 4 "
                "turn tokens, so its chat format is unknown");
  }
  return detect(tok.chat_template());
}

ChatTemplate ChatTemplate::from_name(const std::string& name) {
  if (name == "gemma4") return ChatTemplate(Format::GEMMA4);
  if (name == "gemma4-release") return ChatTemplate(Format::GEMMA4_RELEASE);
  throw Error("unknown chat format '" + name + "' (known: gemma4, gemma4-release)");
}

const char* ChatTemplate::name() const { return format_ == Format::GEMMA4 ? "gemma4" : "gemma4-release"; }

std::string ChatTemplate::render(const ChatValue& messages, const ChatValue& tools, const ChatOptions& opt) const {
  return render_gemma4(messages, tools, opt, format_ == Format::GEMMA4_RELEASE);
}

}  // namespace dg
