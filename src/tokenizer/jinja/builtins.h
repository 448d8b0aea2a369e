// Built-in behaviour of values: attribute and item access (with Python string/dict methods),
// Jinja filters and tests, and the global functions. Errors are fdpp::Error (kInvalidArgument)
// without a line; the interpreter adds it.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/jinja/value.h"

namespace fdpp::jinja {

// obj.name: a bound method for strings (strip, split, startswith, ...) and dicts (items, keys,
// values, get), else the dict key; undefined when there is none.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: list index (negative from the end), dict key, string character; falls back to
// get_attribute for string keys; undefined when out of range or absent.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with Python semantics for lists and strings (code points).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// input | name(args). Throws on an unknown filter.
Value call_filter(std::string_view name, const Value& input, const CallArgs& args);
// input is name(args). Throws on an unknown test.
bool call_test(std::string_view name, const Value& input, const CallArgs& args);

// range, namespace, dict, raise_exception, strftime_now.
void add_globals(Dict& globals);

// The characters (code points) of a UTF-8 string, each as a string: iterating over a string.
List characters(std::string_view s);

// Number of Unicode code points of a UTF-8 string (Python len()).
size_t utf8_length(std::string_view s);

}  // namespace fdpp::jinja
