// ChatValue, and the Python semantics that Jinja templates inherit (str.strip(), str() of numbers,
// ==, dictsort), which the native chat renderer needs to produce jinja2's output byte for byte.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "diffgemma/chat_template.h"
#include "diffgemma/error.h"
#include "text/chat_value_ops.h"
#include "text/utf8.h"

namespace dg {

// ---- ChatValue -------------------------------------------------------------------------------

const ChatValue* ChatValue::get(const std::string& key) const {
  if (kind_ != Kind::OBJECT) return nullptr;
  for (const auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

void ChatValue::set(std::string key, ChatValue v) {
  if (kind_ != Kind::OBJECT) throw Error("ChatValue::set on a value that is not an object");
  for (auto& m : members_) {
    if (m.first == key) {
      m.second = std::move(v);
      return;
    }
  }
  members_.emplace_back(std::move(key), std::move(v));
}

bool ChatValue::truthy() const {
  switch (kind_) {
    case Kind::NONE: return false;
    case Kind::BOOL: return b_;
    case Kind::INT: return i_ != 0;
    case Kind::FLOAT: return d_ != 0.0;
    case Kind::STRING: return !s_.empty();
    case Kind::ARRAY: return !items_.empty();
    case Kind::OBJECT: return !members_.empty();
  }
  return false;
}

namespace text {

bool truthy(const ChatValue* v) { return v && v->truthy(); }

// ---- Python string semantics -----------------------------------------------------------------

// str.isspace() code points.
bool py_isspace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip() (Jinja's `trim`).
std::string py_strip(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end) {
    const size_t n = utf8_sequence_length(s, begin);
    if (n == 0 || !py_isspace(text::utf8_decode(s, begin, n))) break;
    begin += n;
  }
  while (end > begin) {
    size_t k = end - 1;  // find the start of the last character
    while (k > begin && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
    const size_t n = utf8_sequence_length(s, k);
    if (n == 0 || k + n != end || !py_isspace(text::utf8_decode(s, k, n))) break;
    end = k;
  }
  return s.substr(begin, end - begin);
}

// ASCII case mapping. (Python's upper()/lower() also map non-ASCII letters; the template applies
// them only to JSON-schema type names and dictsort keys, which are ASCII in practice.)
std::string ascii_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}
std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// repr(float) / str(float): the shortest digits that round-trip, fixed notation for exponents in
// [-4, 16), else d.ddde+XX.
std::string py_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*e", prec - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  // buf: [-]d[.ddd]e[+-]XX
  std::string s(buf);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s = s.substr(1);
  }
  const size_t epos = s.find('e');
  const int exp10 = std::atoi(s.c_str() + epos + 1);
  std::string digits;
  for (size_t i = 0; i < epos; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 >= 0) {
      std::string ip = digits.substr(0, std::min<size_t>(digits.size(), exp10 + 1));
      while (ip.size() < static_cast<size_t>(exp10 + 1)) ip += '0';
      std::string fp = digits.size() > static_cast<size_t>(exp10 + 1) ? digits.substr(exp10 + 1) : "0";
      out = ip + "." + fp;
    } else {
      out = "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += e;
  }
  return sign + out;
}

// str(value) as Jinja's {{ }} prints it.
std::string py_str(const ChatValue& v) {
  switch (v.kind()) {
    case ChatValue::Kind::NONE: return "None";
    case ChatValue::Kind::BOOL: return v.as_bool() ? "True" : "False";
    case ChatValue::Kind::INT: return std::to_string(v.as_int());
    case ChatValue::Kind::FLOAT: return py_float(v.as_float());
    case ChatValue::Kind::STRING: return v.as_string();
    default: return py_repr(v);
  }
}

namespace {
std::string py_repr_string(const std::string& s) {
  const bool use_double = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = use_double ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + q;
}

}  // namespace

std::string py_repr(const ChatValue& v) {
  switch (v.kind()) {
    case ChatValue::Kind::STRING: return py_repr_string(v.as_string());
    case ChatValue::Kind::ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < v.items().size(); ++i) out += (i ? ", " : "") + py_repr(v.items()[i]);
      return out + "]";
    }
    case ChatValue::Kind::OBJECT: {
      std::string out = "{";
      for (size_t i = 0; i < v.members().size(); ++i) {
        out += (i ? ", " : "") + py_repr_string(v.members()[i].first) + ": " + py_repr(v.members()[i].second);
      }
      return out + "}";
    }
    default: return py_str(v);
  }
}

// `x | upper` (an undefined x prints as "").
std::string upper_of(const ChatValue* v) { return v ? ascii_upper(py_str(*v)) : ""; }
std::string str_of(const ChatValue* v) { return v ? py_str(*v) : ""; }

// Python ==, with an undefined/missing value equal to None (`.get()` returns None).
bool py_equal(const ChatValue* a, const ChatValue* b) {
  static const ChatValue none;
  if (!a) a = &none;
  if (!b) b = &none;
  if (a->is_number() && b->is_number()) return a->as_float() == b->as_float();
  if (a->is_bool() || b->is_bool()) {
    auto num = [](const ChatValue* v, double* out) {
      if (v->is_bool()) { *out = v->as_bool() ? 1.0 : 0.0; return true; }
      if (v->is_number()) { *out = v->as_float(); return true; }
      return false;
    };
    double x = 0.0, y = 0.0;
    return num(a, &x) && num(b, &y) && x == y;
  }
  if (a->kind() != b->kind()) return false;
  switch (a->kind()) {
    case ChatValue::Kind::NONE: return true;
    case ChatValue::Kind::STRING: return a->as_string() == b->as_string();
    case ChatValue::Kind::ARRAY:
      if (a->items().size() != b->items().size()) return false;
      for (size_t i = 0; i < a->items().size(); ++i) {
        if (!py_equal(&a->items()[i], &b->items()[i])) return false;
      }
      return true;
    case ChatValue::Kind::OBJECT:
      if (a->members().size() != b->members().size()) return false;
      for (const auto& m : a->members()) {
        if (!py_equal(&m.second, b->get(m.first))) return false;
      }
      return true;
    default: return false;
  }
}

bool is_string_eq(const ChatValue* v, const char* s) { return v && v->is_string() && v->as_string() == s; }

// `| dictsort`: members ordered by key, case-insensitively, stable.
std::vector<const std::pair<std::string, ChatValue>*> dictsort(const ChatValue& obj) {
  std::vector<const std::pair<std::string, ChatValue>*> out;
  for (const auto& m : obj.members()) out.push_back(&m);
  std::stable_sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    return ascii_lower(a->first) < ascii_lower(b->first);
  });
  return out;
}

}  // namespace text
}  // namespace dg
