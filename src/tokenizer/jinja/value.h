// jinja::Value: the dynamic values of the chat-template interpreter, with Python semantics (what
// Jinja2 inherits): truthiness, ==, str() and repr(), int vs float. Lists and dicts are shared by
// reference, as in Python, so `{% set ns.x = 1 %}` on a namespace is seen by every holder.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fdpp::jinja {

class Value;
using List = std::vector<Value>;

// Insertion-ordered string-keyed map (JSON objects, dict literals, namespace()).
class Dict {
 public:
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value value);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Arguments of a call: positional, then keyword (name, value) in source order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument named `name`, or at position `index`, or nullopt.
  std::optional<Value> get(size_t index, std::string_view name) const;
};

struct Callable {
  std::string name;  // for error messages
  std::function<Value(const CallArgs&)> fn;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kCallable };

  Value() = default;  // undefined
  static Value none();
  Value(bool b) : data_(b) {}
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(List list) : data_(std::make_shared<List>(std::move(list))) {}
  Value(Dict dict) : data_(std::make_shared<Dict>(std::move(dict))) {}
  Value(std::shared_ptr<List> list) : data_(std::move(list)) {}
  Value(std::shared_ptr<Dict> dict) : data_(std::move(dict)) {}
  static Value callable(std::string name, std::function<Value(const CallArgs&)> fn);

  // JSON in (request messages, tools); JSON out (tojson).
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const;
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_number() const;  // int or float as double
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const std::shared_ptr<List>& as_list() const { return std::get<std::shared_ptr<List>>(data_); }
  const std::shared_ptr<Dict>& as_dict() const { return std::get<std::shared_ptr<Dict>>(data_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(data_); }

  bool truthy() const;          // Python bool(): empty strings/lists/dicts, 0, None are false
  std::string str() const;      // Python str(): what {{ x }} prints ('' for undefined)
  std::string repr() const;     // Python repr(): strings quoted, as inside a printed list
  std::string type_name() const;

  // Python json.dumps(x, ensure_ascii=False, indent=indent); indent < 0: one line.
  std::string to_json(int indent = -1) const;

 private:
  struct NoneTag {};
  std::variant<std::monostate, NoneTag, bool, int64_t, double, std::string, std::shared_ptr<List>,
               std::shared_ptr<Dict>, std::shared_ptr<Callable>>
      data_;
};

bool operator==(const Value& a, const Value& b);  // Python ==: 1 == 1.0, deep for lists/dicts
// Python <, for numbers, strings and lists; throws fdpp::Error for other pairs.
bool less_than(const Value& a, const Value& b);

}  // namespace fdpp::jinja
