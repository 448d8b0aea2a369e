// Filters, tests, methods and globals. Names and argument names follow Jinja2 and Python; only
// what chat templates use is here (no HTML-specific filters beyond escape/safe).
#include "tokenizer/jinja/builtins.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "tokenizer/jinja/template.h"

namespace fdpp::jinja {
namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(ErrorCode::kInvalidArgument, what); }

// ---- UTF-8 ----

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + static_cast<size_t>(n) > s.size()) n = 1;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(n);
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode_utf8(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) append_utf8(out, cps[i]);
  return out;
}

// Python's str.isspace().
bool is_unicode_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// str.strip([chars]) / lstrip / rstrip.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  const auto cps = decode_utf8(s);
  std::vector<uint32_t> set;
  const bool custom = chars.is_string();
  if (custom) set = decode_utf8(chars.as_string());
  auto strippable = [&](uint32_t c) {
    return custom ? std::find(set.begin(), set.end(), c) != set.end() : is_unicode_space(c);
  };
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strippable(cps[b])) ++b;
  if (right) while (e > b && strippable(cps[e - 1])) --e;
  return encode_utf8(cps, b, e);
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = !(u >= 0x80 || std::isdigit(u));
    }
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = ascii_map(s, [](int c) { return std::tolower(c); });
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80)
    out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (from.empty()) {  // Python inserts `to` between characters
    const auto cps = decode_utf8(s);
    std::string out;
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < cps.size()) append_utf8(out, cps[i]);
    }
    return out;
  }
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  for (;;) {
    const size_t f = s.find(from, pos);
    if (f == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
    ++done;
  }
  out.append(s, pos);
  return out;
}

List split(const std::string& s, const Value& sep, int64_t maxsplit) {
  List out;
  if (!sep.is_string() || sep.as_string().empty()) {
    if (sep.is_string()) fail("split(): empty separator");
    // Runs of whitespace separate; leading/trailing whitespace is ignored.
    const auto cps = decode_utf8(s);
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && is_unicode_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        size_t e = cps.size();
        while (e > i && is_unicode_space(cps[e - 1])) --e;
        out.emplace_back(encode_utf8(cps, i, e));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_unicode_space(cps[j])) ++j;
      out.emplace_back(encode_utf8(cps, i, j));
      i = j;
    }
    return out;
  }
  const std::string& d = sep.as_string();
  size_t pos = 0;
  for (;;) {
    const size_t f = s.find(d, pos);
    if (f == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit)) break;
    out.emplace_back(s.substr(pos, f - pos));
    pos = f + d.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

int64_t arg_int(const CallArgs& a, size_t i, std::string_view name, int64_t def) {
  const auto v = a.get(i, name);
  if (!v || v->is_none() || v->is_undefined()) return def;
  if (!v->is_int()) fail(fmt::format("argument '{}' must be an integer, found {}", name, v->type_name()));
  return v->as_int();
}

bool arg_bool(const CallArgs& a, size_t i, std::string_view name, bool def) {
  const auto v = a.get(i, name);
  return v ? v->truthy() : def;
}

std::string arg_string(const CallArgs& a, size_t i, std::string_view name, const char* def) {
  const auto v = a.get(i, name);
  if (!v || v->is_undefined()) {
    if (!def) fail(fmt::format("missing argument '{}'", name));
    return def;
  }
  if (!v->is_string()) fail(fmt::format("argument '{}' must be a string, found {}", name, v->type_name()));
  return v->as_string();
}

const std::string& need_string(const Value& v, std::string_view what) {
  if (!v.is_string()) fail(fmt::format("{} needs a string, found {}", what, v.type_name()));
  return v.as_string();
}

// "a.b.0" attribute paths, as Jinja's attribute= arguments take them.
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  for (;;) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = numeric ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

List as_sequence(const Value& v, std::string_view what) {
  if (v.is_list()) return *v.as_list();
  if (v.is_dict()) {
    List keys;
    for (const auto& kv : v.as_dict()->items()) keys.emplace_back(kv.first);
    return keys;
  }
  if (v.is_string()) return characters(v.as_string());
  if (v.is_undefined() || v.is_none()) return {};
  fail(fmt::format("{} needs a sequence, found {}", what, v.type_name()));
}

// ---- methods ----

Value string_method(const std::string& s, const std::string& name) {
  auto m = [&](auto fn) { return Value::callable(name, fn); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return m([s, l, r](const CallArgs& a) { return Value(strip(s, a.get(0, "chars").value_or(Value()), l, r)); });
  }
  if (name == "upper") return m([s](const CallArgs&) { return Value(ascii_map(s, [](int c) { return std::toupper(c); })); });
  if (name == "lower") return m([s](const CallArgs&) { return Value(ascii_map(s, [](int c) { return std::tolower(c); })); });
  if (name == "title") return m([s](const CallArgs&) { return Value(title_case(s)); });
  if (name == "capitalize") return m([s](const CallArgs&) { return Value(capitalize(s)); });
  if (name == "startswith" || name == "endswith") {
    const bool starts = name == "startswith";
    return m([s, starts](const CallArgs& a) {
      const auto p = a.get(0, "prefix");
      if (!p) fail("startswith/endswith needs an argument");
      List options = p->is_list() ? *p->as_list() : List{*p};
      for (const Value& o : options) {
        const std::string& x = need_string(o, "startswith/endswith");
        if (starts ? s.starts_with(x) : s.ends_with(x)) return Value(true);
      }
      return Value(false);
    });
  }
  if (name == "split")
    return m([s](const CallArgs& a) {
      return Value(split(s, a.get(0, "sep").value_or(Value()), arg_int(a, 1, "maxsplit", -1)));
    });
  if (name == "replace")
    return m([s](const CallArgs& a) {
      return Value(replace_all(s, arg_string(a, 0, "old", nullptr), arg_string(a, 1, "new", nullptr),
                               arg_int(a, 2, "count", -1)));
    });
  if (name == "find")
    return m([s](const CallArgs& a) {
      const size_t f = s.find(arg_string(a, 0, "sub", nullptr));
      if (f == std::string::npos) return Value(int64_t{-1});
      return Value(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, f))));
    });
  if (name == "count")
    return m([s](const CallArgs& a) {
      const std::string sub = arg_string(a, 0, "sub", nullptr);
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(s) + 1));
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    });
  if (name == "join")
    return m([s](const CallArgs& a) {
      std::string out;
      const List items = as_sequence(a.get(0, "iterable").value_or(Value()), "join()");
      for (size_t i = 0; i < items.size(); ++i) out += (i ? s : "") + need_string(items[i], "str.join()");
      return Value(std::move(out));
    });
  if (name == "splitlines")
    return m([s](const CallArgs&) {
      List out;
      size_t pos = 0;
      while (pos < s.size()) {
        const size_t nl = s.find('\n', pos);
        std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.emplace_back(std::move(line));
        if (nl == std::string::npos) break;
        pos = nl + 1;
      }
      return Value(std::move(out));
    });
  return Value();
}

Value dict_method(const std::shared_ptr<Dict>& d, const std::string& name) {
  if (name == "items")
    return Value::callable(name, [d](const CallArgs&) {
      List out;
      for (const auto& [k, v] : d->items()) out.emplace_back(List{Value(k), v});
      return Value(std::move(out));
    });
  if (name == "keys")
    return Value::callable(name, [d](const CallArgs&) {
      List out;
      for (const auto& kv : d->items()) out.emplace_back(kv.first);
      return Value(std::move(out));
    });
  if (name == "values")
    return Value::callable(name, [d](const CallArgs&) {
      List out;
      for (const auto& kv : d->items()) out.push_back(kv.second);
      return Value(std::move(out));
    });
  if (name == "get")
    return Value::callable(name, [d](const CallArgs& a) {
      const Value key = a.get(0, "key").value_or(Value());
      if (key.is_string())
        if (const Value* v = d->find(key.as_string())) return *v;
      return a.get(1, "default").value_or(Value::none());
    });
  return Value();
}

// ---- filters ----

Value filter_map(const Value& input, const CallArgs& a) {
  const List items = as_sequence(input, "map");
  List out;
  if (const auto attr = a.get(99, "attribute")) {
    const Value def = a.get(99, "default").value_or(Value());
    for (const Value& v : items) {
      Value x = attribute_path(v, attr->str());
      out.push_back(x.is_undefined() ? def : x);
    }
    return Value(std::move(out));
  }
  if (a.positional.empty()) fail("map needs a filter name or attribute=");
  const std::string name = need_string(a.positional[0], "map");
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& v : items) out.push_back(call_filter(name, v, rest));
  return Value(std::move(out));
}

// select/reject(test, args...) and selectattr/rejectattr(attr, test, args...).
Value filter_select(const Value& input, const CallArgs& a, bool by_attr, bool keep_if) {
  const List items = as_sequence(input, "select");
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.positional.empty()) fail("selectattr/rejectattr needs an attribute name");
    attr = need_string(a.positional[0], "selectattr");
    first = 1;
  }
  std::string test;
  CallArgs targs;
  if (a.positional.size() > first) {
    test = need_string(a.positional[first], "select");
    targs.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(first) + 1, a.positional.end());
  }
  List out;
  for (const Value& v : items) {
    const Value x = by_attr ? attribute_path(v, attr) : v;
    const bool pass = test.empty() ? x.truthy() : call_test(test, x, targs);
    if (pass == keep_if) out.push_back(v);
  }
  return Value(std::move(out));
}

Value filter_sort(const Value& input, const CallArgs& a) {
  List items = as_sequence(input, "sort");
  const bool reverse = arg_bool(a, 0, "reverse", false);
  const auto attr = a.get(2, "attribute");
  auto key = [&](const Value& v) { return attr ? attribute_path(v, attr->str()) : v; };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? less_than(key(y), key(x)) : less_than(key(x), key(y));
  });
  return Value(std::move(items));
}

Value filter_indent(const Value& input, const CallArgs& a) {
  const std::string s = input.str();
  const auto w = a.get(0, "width");
  const std::string pad = w && w->is_string() ? w->as_string()
                                               : std::string(static_cast<size_t>(std::max<int64_t>(0, arg_int(a, 0, "width", 4))), ' ');
  const bool first = arg_bool(a, 1, "first", false);
  const bool blank = arg_bool(a, 2, "blank", false);
  std::string out;
  size_t pos = 0;
  bool is_first = true;
  while (pos <= s.size()) {
    const size_t nl = s.find('\n', pos);
    const std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if ((!is_first || first) && (blank || !line.empty())) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    is_first = false;
  }
  return Value(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

List characters(std::string_view s) {
  List chars;
  for (uint32_t c : decode_utf8(s)) {
    std::string ch;
    append_utf8(ch, c);
    chars.emplace_back(std::move(ch));
  }
  return chars;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_dict()) {
    if (Value m = dict_method(obj.as_dict(), name); !m.is_undefined()) return m;
    if (const Value* v = obj.as_dict()->find(name)) return *v;
    return Value();
  }
  if (obj.is_string()) return string_method(obj.as_string(), name);
  return Value();
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_list() && key.is_int()) {
    const List& l = *obj.as_list();
    int64_t i = key.as_int();
    if (i < 0) i += static_cast<int64_t>(l.size());
    if (i < 0 || i >= static_cast<int64_t>(l.size())) return Value();
    return l[static_cast<size_t>(i)];
  }
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.as_dict()->find(key.as_string())) return *v;
    return get_attribute(obj, key.as_string());
  }
  if (obj.is_string() && key.is_int()) {
    const auto cps = decode_utf8(obj.as_string());
    int64_t i = key.as_int();
    if (i < 0) i += static_cast<int64_t>(cps.size());
    if (i < 0 || i >= static_cast<int64_t>(cps.size())) return Value();
    return Value(encode_utf8(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value();
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  auto opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int()) fail(fmt::format("slice {} must be an integer, found {}", what, v.type_name()));
    return v.as_int();
  };
  const int64_t st = opt(step, "step").value_or(1);
  if (st == 0) fail("slice step cannot be zero");
  std::vector<uint32_t> cps;
  const List* list = nullptr;
  int64_t n = 0;
  if (obj.is_list()) {
    list = obj.as_list().get();
    n = static_cast<int64_t>(list->size());
  } else if (obj.is_string()) {
    cps = decode_utf8(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_undefined() || obj.is_none()) {
    return Value(List{});
  } else {
    fail(fmt::format("a {} cannot be sliced", obj.type_name()));
  }
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) x += n;
    if (st > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  const int64_t b = clamp(opt(start, "start"), st > 0 ? 0 : n - 1);
  const int64_t e = clamp(opt(stop, "stop"), st > 0 ? n : -1);
  List out_list;
  std::string out_str;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
    if (list) out_list.push_back((*list)[static_cast<size_t>(i)]);
    else append_utf8(out_str, cps[static_cast<size_t>(i)]);
  }
  if (list) return Value(std::move(out_list));
  return Value(std::move(out_str));
}

Value call_filter(std::string_view name, const Value& in, const CallArgs& a) {
  if (name == "trim") return Value(strip(need_string(in, "trim"), a.get(0, "chars").value_or(Value()), true, true));
  if (name == "upper") return Value(ascii_map(in.str(), [](int c) { return std::toupper(c); }));
  if (name == "lower") return Value(ascii_map(in.str(), [](int c) { return std::tolower(c); }));
  if (name == "title") return Value(title_case(in.str()));
  if (name == "capitalize") return Value(capitalize(in.str()));
  if (name == "string") return Value(in.str());
  if (name == "safe") return in;
  if (name == "e" || name == "escape") return Value(html_escape(in.str()));
  if (name == "length" || name == "count") {
    if (in.is_string()) return Value(static_cast<int64_t>(utf8_length(in.as_string())));
    if (in.is_list()) return Value(static_cast<int64_t>(in.as_list()->size()));
    if (in.is_dict()) return Value(static_cast<int64_t>(in.as_dict()->size()));
    if (in.is_undefined()) return Value(int64_t{0});
    fail(fmt::format("length of a {}", in.type_name()));
  }
  if (name == "first" || name == "last") {
    const List items = as_sequence(in, name == "first" ? "first" : "last");
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    const List items = as_sequence(in, "join");
    const std::string sep = arg_string(a, 0, "d", "");
    const auto attr = a.get(1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i)
      out += (i ? sep : "") + (attr ? attribute_path(items[i], attr->str()) : items[i]).str();
    return Value(std::move(out));
  }
  if (name == "default" || name == "d") {
    const bool boolean = arg_bool(a, 1, "boolean", false);
    if (in.is_undefined() || (boolean && !in.truthy())) return a.get(0, "default_value").value_or(Value(""));
    return in;
  }
  if (name == "tojson") {
    const auto indent = a.get(0, "indent");
    return Value(in.to_json(indent && indent->is_int() ? static_cast<int>(indent->as_int()) : -1));
  }
  if (name == "list") return Value(as_sequence(in, "list"));
  if (name == "items") {
    if (in.is_undefined()) return Value(List{});
    if (!in.is_dict()) fail(fmt::format("items needs a dict, found {}", in.type_name()));
    return dict_method(in.as_dict(), "items").as_callable().fn({});
  }
  if (name == "dictsort") {
    if (!in.is_dict()) fail(fmt::format("dictsort needs a dict, found {}", in.type_name()));
    List pairs = *dict_method(in.as_dict(), "items").as_callable().fn({}).as_list();
    std::stable_sort(pairs.begin(), pairs.end(), [](const Value& x, const Value& y) {
      return less_than((*x.as_list())[0], (*y.as_list())[0]);
    });
    return Value(std::move(pairs));
  }
  if (name == "map") return filter_map(in, a);
  if (name == "select") return filter_select(in, a, false, true);
  if (name == "reject") return filter_select(in, a, false, false);
  if (name == "selectattr") return filter_select(in, a, true, true);
  if (name == "rejectattr") return filter_select(in, a, true, false);
  if (name == "attr") return get_attribute(in, arg_string(a, 0, "name", nullptr));
  if (name == "replace")
    return Value(replace_all(in.str(), arg_string(a, 0, "old", nullptr), arg_string(a, 1, "new", nullptr),
                             arg_int(a, 2, "count", -1)));
  if (name == "reverse") {
    if (in.is_string()) return slice(in, Value(), Value(), Value(int64_t{-1}));
    List items = as_sequence(in, "reverse");
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "sort") return filter_sort(in, a);
  if (name == "unique") {
    List out;
    for (const Value& v : as_sequence(in, "unique"))
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    return Value(std::move(out));
  }
  if (name == "min" || name == "max") {
    const List items = as_sequence(in, name == "min" ? "min" : "max");
    if (items.empty()) return Value();
    Value best = items[0];
    for (const Value& v : items)
      if (name == "min" ? less_than(v, best) : less_than(best, v)) best = v;
    return best;
  }
  if (name == "sum") {
    const auto attr = a.get(0, "attribute");
    Value total = a.get(1, "start").value_or(Value(int64_t{0}));
    for (const Value& v : as_sequence(in, "sum")) {
      const Value x = attr ? attribute_path(v, attr->str()) : v;
      if (!x.is_number() || !total.is_number()) fail("sum needs numbers");
      total = total.is_int() && x.is_int() ? Value(total.as_int() + x.as_int()) : Value(total.as_number() + x.as_number());
    }
    return total;
  }
  if (name == "int") {
    if (in.is_int()) return in;
    if (in.is_float()) return Value(static_cast<int64_t>(in.as_number()));
    if (in.is_bool()) return Value(int64_t{in.as_bool() ? 1 : 0});
    if (in.is_string()) {
      try {
        return Value(static_cast<int64_t>(std::stoll(in.as_string())));
      } catch (const std::exception&) {
      }
    }
    return a.get(0, "default").value_or(Value(int64_t{0}));
  }
  if (name == "float") {
    if (in.is_number()) return Value(in.as_number());
    if (in.is_string()) {
      try {
        return Value(std::stod(in.as_string()));
      } catch (const std::exception&) {
      }
    }
    return a.get(0, "default").value_or(Value(0.0));
  }
  if (name == "abs") {
    if (in.is_int()) return Value(in.as_int() < 0 ? -in.as_int() : in.as_int());
    if (in.is_float()) return Value(std::fabs(in.as_number()));
    fail(fmt::format("abs of a {}", in.type_name()));
  }
  if (name == "round") {
    if (!in.is_number()) fail(fmt::format("round of a {}", in.type_name()));
    const int64_t precision = arg_int(a, 0, "precision", 0);
    const std::string method = arg_string(a, 1, "method", "common");
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = in.as_number() * scale;
    const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
    return Value(r / scale);
  }
  if (name == "indent") return filter_indent(in, a);
  if (name == "wordcount") return Value(static_cast<int64_t>(split(in.str(), Value(), -1).size()));
  fail(fmt::format("unknown filter '{}'", name));
}

bool call_test(std::string_view name, const Value& v, const CallArgs& a) {
  const auto arg = [&]() {
    if (a.positional.empty()) fail(fmt::format("test '{}' needs an argument", name));
    return a.positional[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_callable();
  if (name == "lower") return v.is_string() && ascii_map(v.as_string(), [](int c) { return std::tolower(c); }) == v.as_string();
  if (name == "upper") return v.is_string() && ascii_map(v.as_string(), [](int c) { return std::toupper(c); }) == v.as_string();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) fail(fmt::format("test '{}' needs an integer, found {}", name, v.type_name()));
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const Value d = arg();
    if (!v.is_int() || !d.is_int() || d.as_int() == 0) fail("divisibleby needs non-zero integers");
    return v.as_int() % d.as_int() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return v == arg();
  if (name == "ne" || name == "!=") return !(v == arg());
  if (name == "lt" || name == "lessthan" || name == "<") return less_than(v, arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return less_than(arg(), v);
  if (name == "le" || name == "<=") return !less_than(arg(), v);
  if (name == "ge" || name == ">=") return !less_than(v, arg());
  if (name == "in") {
    const Value c = arg();
    if (c.is_string()) return v.is_string() && c.as_string().find(v.as_string()) != std::string::npos;
    if (c.is_dict()) return v.is_string() && c.as_dict()->find(v.as_string());
    for (const Value& x : as_sequence(c, "in"))
      if (x == v) return true;
    return false;
  }
  if (name == "sameas") {
    const Value o = arg();
    if (v.kind() != o.kind()) return false;
    if (v.is_list()) return v.as_list() == o.as_list();
    if (v.is_dict()) return v.as_dict() == o.as_dict();
    return v == o;
  }
  fail(fmt::format("unknown test '{}'", name));
}

void add_globals(Dict& g) {
  g.set("raise_exception", Value::callable("raise_exception", [](const CallArgs& a) -> Value {
    throw RaisedError(a.positional.empty() ? std::string("raise_exception() was called") : a.positional[0].str());
  }));
  g.set("range", Value::callable("range", [](const CallArgs& a) {
    for (const Value& v : a.positional)
      if (!v.is_int()) fail(fmt::format("range() needs integers, found {}", v.type_name()));
    int64_t start = 0, stop = 0, step = 1;
    if (a.positional.size() == 1) stop = a.positional[0].as_int();
    else if (a.positional.size() >= 2) {
      start = a.positional[0].as_int();
      stop = a.positional[1].as_int();
      if (a.positional.size() >= 3) step = a.positional[2].as_int();
    } else fail("range() needs 1 to 3 arguments");
    if (step == 0) fail("range() step must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      out.emplace_back(i);
      if (out.size() > 1000000) fail("range() is too long");
    }
    return Value(std::move(out));
  }));
  auto make_dict = [](const CallArgs& a) {
    Dict d;
    for (const Value& p : a.positional)
      if (p.is_dict())
        for (const auto& [k, v] : p.as_dict()->items()) d.set(k, v);
    for (const auto& [k, v] : a.keyword) d.set(k, v);
    return Value(std::move(d));
  };
  g.set("namespace", Value::callable("namespace", make_dict));
  g.set("dict", Value::callable("dict", make_dict));
  g.set("strftime_now", Value::callable("strftime_now", [](const CallArgs& a) {
    const std::string format = arg_string(a, 0, "format", "%Y-%m-%d");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
    return Value(std::string(buf, n));
  }));
}

}  // namespace fdpp::jinja
