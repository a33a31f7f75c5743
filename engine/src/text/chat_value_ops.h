// Python semantics over ChatValue, as the Jinja chat templates see them (implemented in
// chat_value.cpp). Undefined Jinja values are nullptr.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "diffgemma/chat_template.h"

namespace dg::text {

bool truthy(const ChatValue* v);                 // Python truthiness; undefined is false
bool py_isspace(uint32_t code_point);            // str.isspace()
std::string py_strip(const std::string& s);      // str.strip(), Jinja's `trim`
std::string ascii_upper(std::string s);          // `upper` for ASCII (see chat_value.cpp)
std::string ascii_lower(std::string s);
std::string py_float(double x);                  // repr(float)
std::string py_str(const ChatValue& v);          // str(v), what {{ v }} prints
std::string py_repr(const ChatValue& v);         // repr(v)
std::string upper_of(const ChatValue* v);        // `v | upper`, "" when undefined
std::string str_of(const ChatValue* v);          // `{{ v }}`, "" when undefined
bool py_equal(const ChatValue* a, const ChatValue* b);  // ==, undefined equal to None
bool is_string_eq(const ChatValue* v, const char* s);
// `| dictsort`: members ordered by key case-insensitively, stable.
std::vector<const std::pair<std::string, ChatValue>*> dictsort(const ChatValue& obj);

}  // namespace dg::text
