// The lexer makes two passes: the first splits the source into text and tags (remembering each
// tag's whitespace-control marks), the second applies whitespace control to the text pieces,
// which needs both neighbours of a piece.
#include "tokenizer/jinja/lexer.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "fdpp/status.h"

namespace fdpp::jinja {
namespace {

[[noreturn]] void fail(int line, const std::string& what) {
  throw Error(ErrorCode::kParse, fmt::format("chat template line {}: {}", line, what));
}

enum class TagKind { kExpr, kStmt, kComment };

// One piece of the first pass: text, or a tag with its tokens.
struct Piece {
  bool is_text = true;
  std::string text;            // is_text
  TagKind kind = TagKind::kExpr;
  char left_mark = 0;          // '-', '+' or 0 right after the opening delimiter
  char right_mark = 0;         // '-', '+' or 0 right before the closing delimiter
  std::vector<Token> tokens;   // tag contents
  int line = 1;
  bool at_source_start = false;  // text: begins the template
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Scanner {
 public:
  explicit Scanner(std::string_view src) : src_(src) {}

  std::vector<Piece> split() {
    std::vector<Piece> pieces;
    while (pos_ < src_.size()) {
      const size_t open = find_open(pos_);
      if (open > pos_ || pieces.empty()) {
        Piece t;
        t.text = std::string(src_.substr(pos_, open - pos_));
        t.line = line_;
        t.at_source_start = pos_ == 0;
        advance_to(open);
        pieces.push_back(std::move(t));
      }
      if (open >= src_.size()) break;
      Piece tag = scan_tag();
      const bool raw = tag.kind == TagKind::kStmt && tag.tokens.size() == 1 &&
                       tag.tokens[0].type == Token::Type::kName && tag.tokens[0].text == "raw";
      pieces.push_back(std::move(tag));
      if (raw) scan_raw(pieces);
    }
    return pieces;
  }

 private:
  size_t find_open(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }

  void advance_to(size_t p) {
    for (; pos_ < p; ++pos_)
      if (src_[pos_] == '\n') ++line_;
  }

  char mark_at(size_t p) const {
    return p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
  }

  Piece scan_tag() {
    Piece tag;
    tag.is_text = false;
    tag.line = line_;
    const char c = src_[pos_ + 1];
    tag.kind = c == '{' ? TagKind::kExpr : c == '%' ? TagKind::kStmt : TagKind::kComment;
    advance_to(pos_ + 2);
    tag.left_mark = mark_at(pos_);
    if (tag.left_mark) advance_to(pos_ + 1);
    if (tag.kind == TagKind::kComment) {
      const size_t end = src_.find("#}", pos_);
      if (end == std::string_view::npos) fail(tag.line, "unterminated comment '{#'");
      tag.right_mark = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
      advance_to(end + 2);
      return tag;
    }
    const char close = tag.kind == TagKind::kExpr ? '}' : '%';
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size())
        fail(tag.line, fmt::format("unterminated tag '{}'", tag.kind == TagKind::kExpr ? "{{" : "{%"));
      // Closing delimiter, possibly with a whitespace-control mark.
      if ((src_[pos_] == '-' || src_[pos_] == '+') && pos_ + 2 < src_.size() &&
          src_[pos_ + 1] == close && src_[pos_ + 2] == '}') {
        tag.right_mark = src_[pos_];
        advance_to(pos_ + 3);
        return tag;
      }
      if (src_[pos_] == close && pos_ + 1 < src_.size() && src_[pos_ + 1] == '}') {
        advance_to(pos_ + 2);
        return tag;
      }
      tag.tokens.push_back(scan_token());
    }
  }

  Token scan_token() {
    Token t;
    t.line = line_;
    const char c = src_[pos_];
    if (is_name_start(c)) {
      size_t e = pos_;
      while (e < src_.size() && is_name_char(src_[e])) ++e;
      t.type = Token::Type::kName;
      t.text = std::string(src_.substr(pos_, e - pos_));
      advance_to(e);
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return scan_number();
    if (c == '\'' || c == '"') return scan_string();
    static constexpr std::string_view kTwo[] = {"**", "//", "==", "!=", "<=", ">="};
    size_t len = 0;
    for (std::string_view op : kTwo)
      if (src_.substr(pos_, 2) == op) len = 2;
    if (len == 0 && std::strchr("+-*/%~<>=()[]{},.:|", c) != nullptr) len = 1;
    if (len > 0) {
      Token op{Token::Type::kOp, std::string(src_.substr(pos_, len)), 0, 0.0, line_};
      advance_to(pos_ + len);
      return op;
    }
    fail(line_, fmt::format("unexpected character '{}'", c));
  }

  Token scan_number() {
    Token t;
    t.line = line_;
    size_t e = pos_;
    auto digits = [&] {
      while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
    };
    digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      ++e;
      digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t f = e + 1;
      if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) ++f;
      if (f < src_.size() && std::isdigit(static_cast<unsigned char>(src_[f]))) {
        is_float = true;
        e = f;
        digits();
      }
    }
    std::string text(src_.substr(pos_, e - pos_));
    std::erase(text, '_');
    t.text = text;
    if (is_float) {
      t.type = Token::Type::kFloat;
      t.float_value = std::stod(text);
    } else {
      t.type = Token::Type::kInt;
      try {
        t.int_value = std::stoll(text);
      } catch (const std::exception&) {
        fail(line_, fmt::format("integer literal {} is out of range", text));
      }
    }
    advance_to(e);
    return t;
  }

  Token scan_string() {
    Token t;
    t.type = Token::Type::kString;
    t.line = line_;
    const char quote = src_[pos_];
    size_t i = pos_ + 1;
    std::string out;
    for (;;) {
      if (i >= src_.size()) fail(t.line, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c == '\\' && i + 1 < src_.size()) {
        const char n = src_[i + 1];
        i += 2;
        switch (n) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case '0': out += '\0'; break;
          case '\\': out += '\\'; break;
          case '\'': out += '\''; break;
          case '"': out += '"'; break;
          case '\n': break;  // line continuation
          case 'u': {
            if (i + 4 > src_.size()) fail(t.line, "truncated \\u escape");
            const uint32_t cp = static_cast<uint32_t>(std::stoul(std::string(src_.substr(i, 4)), nullptr, 16));
            i += 4;
            append_utf8(out, cp);
            break;
          }
          default:  // Python keeps unknown escapes as written
            out += '\\';
            out += n;
        }
        continue;
      }
      out += c;
      ++i;
    }
    t.text = std::move(out);
    advance_to(i + 1);
    return t;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // After {% raw %}: everything up to {% endraw %} is text.
  void scan_raw(std::vector<Piece>& pieces) {
    size_t search = pos_;
    for (;;) {
      const size_t open = src_.find("{%", search);
      if (open == std::string_view::npos) fail(pieces.back().line, "missing {% endraw %}");
      size_t p = open + 2;
      const char left = mark_at(p);
      if (left) ++p;
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (src_.substr(p, 6) != "endraw") {
        search = open + 2;
        continue;
      }
      p += 6;
      while (p < src_.size() && is_space(src_[p])) ++p;
      const char right = mark_at(p);
      if (right) ++p;
      if (src_.substr(p, 2) != "%}") fail(line_, "malformed {% endraw %}");
      Piece text;
      text.text = std::string(src_.substr(pos_, open - pos_));
      text.line = line_;
      pieces.push_back(std::move(text));
      Piece end;
      end.is_text = false;
      end.kind = TagKind::kComment;  // vanishes, but keeps its whitespace control
      end.left_mark = left;
      end.right_mark = right;
      end.line = line_;
      advance_to(p + 2);
      pieces.push_back(std::move(end));
      // The raw tag itself must not appear as a statement: drop its tokens.
      Piece& raw_tag = pieces[pieces.size() - 3];
      raw_tag.kind = TagKind::kComment;
      raw_tag.tokens.clear();
      return;
    }
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
};

void rstrip_all(std::string& s) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
}

void lstrip_all(std::string& s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  s.erase(0, i);
}

// lstrip_blocks: the spaces/tabs between the last newline (or the template start) and the tag.
void lstrip_line_tail(std::string& s, bool at_source_start) {
  size_t i = s.size();
  while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) --i;
  if (i == 0 ? at_source_start : s[i - 1] == '\n') s.erase(i);
}

void trim_first_newline(std::string& s) {
  if (s.starts_with("\r\n")) s.erase(0, 2);
  else if (s.starts_with("\n")) s.erase(0, 1);
}

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options) {
  Scanner scanner(source);
  std::vector<Piece> pieces = scanner.split();
  // Whitespace control: each text piece is shaped by the tag before and the tag after it.
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].is_text) continue;
    std::string& text = pieces[i].text;
    const Piece* after = i + 1 < pieces.size() ? &pieces[i + 1] : nullptr;
    const Piece* before = i > 0 ? &pieces[i - 1] : nullptr;
    if (after && !after->is_text) {
      if (after->left_mark == '-') rstrip_all(text);
      else if (after->left_mark != '+' && after->kind != TagKind::kExpr && options.lstrip_blocks)
        lstrip_line_tail(text, pieces[i].at_source_start || (before == nullptr));
    }
    if (before && !before->is_text) {
      if (before->right_mark == '-') lstrip_all(text);
      else if (before->right_mark != '+' && before->kind != TagKind::kExpr && options.trim_blocks)
        trim_first_newline(text);
    }
  }
  // A '-' tag next to a tag (no text between) has nothing to strip. Emit the tokens.
  std::vector<Token> out;
  for (Piece& p : pieces) {
    if (p.is_text) {
      if (p.text.empty()) continue;
      Token t;
      t.type = Token::Type::kText;
      t.text = std::move(p.text);
      t.line = p.line;
      out.push_back(std::move(t));
      continue;
    }
    if (p.kind == TagKind::kComment) continue;
    Token open;
    open.type = p.kind == TagKind::kExpr ? Token::Type::kExprOpen : Token::Type::kStmtOpen;
    open.line = p.line;
    out.push_back(open);
    for (Token& t : p.tokens) out.push_back(std::move(t));
    Token close;
    close.type = p.kind == TagKind::kExpr ? Token::Type::kExprClose : Token::Type::kStmtClose;
    close.line = p.line;
    out.push_back(close);
  }
  Token end;
  end.type = Token::Type::kEnd;
  out.push_back(end);
  return out;
}

}  // namespace fdpp::jinja
