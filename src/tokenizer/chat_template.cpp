#include "tokenizer/chat_template.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <variant>

#include "core/error.h"

namespace lorahub {

namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxOutput = size_t{1} << 24;  // 16 MiB of rendered text
constexpr size_t kMaxSteps = 1'000'000;         // loop iterations + nodes rendered
constexpr int kMaxDepth = 200;                  // nesting of expressions and blocks

[[noreturn]] void fail_at(int line, const std::string& msg) {
  fail("chat template line {}: {}", line, msg);
}

// ------------------------------------------------------------------------------ values

// A template value: JSON data, Jinja's undefined, or a namespace() object (mutable, shared).
struct Value {
  Json data;
  bool undefined = false;
  std::shared_ptr<Json> ns;
  int64_t loop_index = -1, loop_length = 0;  // the `loop` variable of a for (index >= 0)

  static Value undef() {
    Value v;
    v.undefined = true;
    return v;
  }
  static Value of(Json j) {
    Value v;
    v.data = std::move(j);
    return v;
  }
  const Json& json() const { return ns ? *ns : data; }
};

bool truthy(const Value& v) {
  if (v.undefined) return false;
  if (v.ns) return true;
  const Json& j = v.data;
  if (j.is_null()) return false;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<int64_t>() != 0;
  if (j.is_number()) return j.get<double>() != 0.0;
  if (j.is_string()) return !j.get_ref<const std::string&>().empty();  // json::empty() is false
  if (j.is_array() || j.is_object()) return !j.empty();
  return true;
}

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string py_repr(const Json& j);

std::string py_str(const Json& j) {  // Python's str() of the value
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "None";
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_number_integer()) return std::to_string(j.get<int64_t>());
  if (j.is_number()) return py_float(j.get<double>());
  return py_repr(j);
}

std::string py_repr(const Json& j) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    const char q =
        s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
    std::string out(1, q);
    for (char c : s) {
      if (c == q || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out + q;
  }
  if (j.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + py_repr(j[i]);
    return out + "]";
  }
  if (j.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      out += (first ? "" : ", ") + py_repr(Json(k)) + ": " + py_repr(v);
      first = false;
    }
    return out + "}";
  }
  return py_str(j);
}

std::string to_text(const Value& v) {
  return v.undefined ? "" : py_str(v.json());
}

// json.dumps(x, ensure_ascii=False, indent=indent) as transformers' tojson filter calls it.
void dump_json(const Json& j, int indent, int level, std::string& out) {
  const std::string nl = indent > 0 ? "\n" + std::string(size_t(indent) * (level + 1), ' ') : "";
  const std::string close = indent > 0 ? "\n" + std::string(size_t(indent) * level, ' ') : "";
  const char* sep = indent > 0 ? "," : ", ";
  if (j.is_array()) {
    if (j.empty()) {
      out += "[]";
      return;
    }
    out += "[";
    for (size_t i = 0; i < j.size(); ++i) {
      out += (i ? sep : "") + nl;
      dump_json(j[i], indent, level + 1, out);
    }
    out += close + "]";
  } else if (j.is_object()) {
    if (j.empty()) {
      out += "{}";
      return;
    }
    out += "{";
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      out += (first ? "" : sep) + nl + Json(k).dump(-1, ' ', false) + ": ";
      first = false;
      dump_json(v, indent, level + 1, out);
    }
    out += close + "}";
  } else if (j.is_number_float()) {
    out += py_float(j.get<double>());
  } else {
    out += j.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

// ------------------------------------------------------------------------------ lexing

struct Tok {
  enum Kind { Name, Number, String, Op, End } kind;
  std::string text;
  Json value;  // Number, String
  int line;
};

std::vector<Tok> lex_expression(const std::string& s, int line) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\n') ++line;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::Name, s.substr(i, j - i), {}, line});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) ||
                              (s[j] == '.' && !is_float && j + 1 < s.size() &&
                               std::isdigit(static_cast<unsigned char>(s[j + 1]))))) {
        is_float |= s[j] == '.';
        ++j;
      }
      const std::string num = s.substr(i, j - i);
      out.push_back(
          {Tok::Number, num, is_float ? Json(std::stod(num)) : Json(std::stoll(num)), line});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string str;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\n') ++line;
        if (s[j] != '\\' || j + 1 >= s.size()) {
          str += s[j];
          continue;
        }
        const char e = s[++j];
        str += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
      if (j >= s.size()) fail_at(line, "unterminated string literal");
      out.push_back({Tok::String, str, Json(str), line});
      i = j + 1;
    } else {
      static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* t : two)
        if (s.compare(i, 2, t) == 0) op = t;
      if (std::string_view("=<>+-*/%~|()[]{}.,:!").find(c) == std::string_view::npos)
        fail_at(line, fmt::format("unexpected character '{}'", c));
      out.push_back({Tok::Op, op, {}, line});
      i += op.size();
    }
  }
  out.push_back({Tok::End, "", {}, line});
  return out;
}

// A template is text, {{ expression }}, {% statement %} and {# comment #} pieces.
struct Piece {
  enum Kind { Text, Expr, Stmt } kind;
  std::string text;
  int line;
};

// Where a tag's body ends: its close delimiter outside string literals, as Jinja's lexer reads
// it (Qwen2.5's template prints "{{\"name\": ...}}" inside a {{ }} tag). Comments have none.
size_t tag_end(const std::string& src, size_t body, const std::string& close, bool strings) {
  for (size_t i = body; i < src.size(); ++i) {
    if (strings && (src[i] == '"' || src[i] == '\'')) {
      const char quote = src[i];
      for (++i; i < src.size() && src[i] != quote; ++i) i += src[i] == '\\';
      continue;
    }
    if (src.compare(i, close.size(), close) == 0) return i;
  }
  return std::string::npos;
}

std::vector<Piece> split_template(const std::string& src) {
  std::vector<Piece> pieces;
  size_t pos = 0;
  int line = 1;
  bool trim_next = false;  // `-` on the previous tag's close or trim_blocks after a block
  bool trim_newline = false;
  const auto add_text = [&](std::string text) {
    if (trim_next)
      text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos
                        ? text.size()
                        : text.find_first_not_of(" \t\r\n"));
    else if (trim_newline && text.starts_with("\n"))
      text.erase(0, 1);
    else if (trim_newline && text.starts_with("\r\n"))
      text.erase(0, 2);
    pieces.push_back({Piece::Text, std::move(text), line});
  };
  while (pos < src.size()) {
    size_t open = src.find('{', pos);
    while (open != std::string::npos && open + 1 < src.size() &&
           std::string_view("{%#").find(src[open + 1]) == std::string_view::npos)
      open = src.find('{', open + 1);
    if (open == std::string::npos || open + 1 >= src.size()) {
      add_text(src.substr(pos));
      break;
    }
    const char kind = src[open + 1];
    std::string text = src.substr(pos, open - pos);
    size_t body = open + 2;
    const bool strip_before = body < src.size() && src[body] == '-';
    const bool keep_before = body < src.size() && src[body] == '+';
    if (strip_before || keep_before) ++body;
    if (strip_before) {
      text.erase(text.find_last_not_of(" \t\r\n") + 1);
    } else if (kind != '{' && !keep_before) {  // lstrip_blocks: spaces before a tag on its line
      // Only when the tag starts its source line (after a newline or at the template start).
      const size_t nl = text.find_last_of('\n');
      const size_t line_start = nl != std::string::npos ? nl + 1 : pos == 0 ? 0 : std::string::npos;
      if (line_start != std::string::npos &&
          text.find_first_not_of(" \t", line_start) == std::string::npos)
        text.erase(line_start);
    }
    add_text(std::move(text));
    line += static_cast<int>(std::count(src.begin() + pos, src.begin() + open, '\n'));
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    const size_t end = tag_end(src, body, close, kind != '#');
    if (end == std::string::npos) fail_at(line, "unterminated '{" + std::string(1, kind) + "'");
    const bool strip_after = end > body && src[end - 1] == '-';
    std::string inner = src.substr(body, end - body - (strip_after ? 1 : 0));
    if (kind == '{') pieces.push_back({Piece::Expr, inner, line});
    if (kind == '%') pieces.push_back({Piece::Stmt, inner, line});
    line += static_cast<int>(std::count(src.begin() + open, src.begin() + end, '\n'));
    trim_next = strip_after;
    trim_newline = kind != '{';  // trim_blocks: the newline after a block or comment tag
    pos = end + 2;
  }
  return pieces;
}

// ------------------------------------------------------------------------------ syntax tree

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum Kind {
    Literal,
    Var,
    Attr,
    Item,
    Slice,
    Call,
    Filter,
    Test,
    Unary,
    Binary,
    Cond,
    List,
    Dict
  } kind;
  int line = 0;
  Json value;                 // Literal
  std::string name;           // Var, Attr, Call (when calling a name or method), Filter, Test, ops
  std::vector<ExprPtr> args;  // operands / arguments / items
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // keyword arguments
  bool negated = false;                                 // `is not`
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum Kind { Text, Output, If, For, Set, SetBlock, Break, Continue } kind;
  int line = 0;
  std::string text;                                // Text
  ExprPtr expr;                                    // Output, Set value, For iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (condition, body); else has no cond
  std::vector<std::string> targets;                // For loop variables; Set: name [, attr]
  ExprPtr filter;                                  // For ... if filter
  Body body, else_body;                            // For, SetBlock
};

class Parser {
 public:
  Parser(std::vector<Tok> toks) : t_(std::move(toks)) {}

  ExprPtr expression(int depth = 0) {
    if (depth > kMaxDepth) fail_at(peek().line, "expression nested too deeply");
    auto e = or_expr(depth);
    if (is_name("if")) {  // a if cond else b
      next();
      auto cond = or_expr(depth);
      ExprPtr other;
      if (is_name("else")) {
        next();
        other = expression(depth + 1);
      }
      auto c = make(Expr::Cond);
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      return c;
    }
    return e;
  }
  const Tok& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  Tok next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool is_op(const char* op) const { return peek().kind == Tok::Op && peek().text == op; }
  bool is_name(const char* n) const { return peek().kind == Tok::Name && peek().text == n; }
  void expect_op(const char* op) {
    if (!is_op(op)) fail_at(peek().line, fmt::format("expected '{}', found '{}'", op, peek().text));
    next();
  }
  std::string expect_name() {
    if (peek().kind != Tok::Name)
      fail_at(peek().line, "expected a name, found '" + peek().text + "'");
    return next().text;
  }
  void expect_end() {
    if (peek().kind != Tok::End) fail_at(peek().line, "unexpected '" + peek().text + "'");
  }

 private:
  ExprPtr make(Expr::Kind k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = peek().line;
    return e;
  }
  ExprPtr binary(std::string op, ExprPtr l, ExprPtr r) {
    auto e = make(Expr::Binary);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }
  ExprPtr or_expr(int d) {
    auto e = and_expr(d);
    while (is_name("or")) {
      next();
      e = binary("or", std::move(e), and_expr(d));
    }
    return e;
  }
  ExprPtr and_expr(int d) {
    auto e = not_expr(d);
    while (is_name("and")) {
      next();
      e = binary("and", std::move(e), not_expr(d));
    }
    return e;
  }
  ExprPtr not_expr(int d) {
    if (is_name("not")) {
      next();
      auto e = make(Expr::Unary);
      e->name = "not";
      e->args.push_back(not_expr(d + 1));
      return e;
    }
    return compare(d);
  }
  ExprPtr compare(int d) {
    auto e = concat(d);
    for (;;) {
      if (peek().kind == Tok::Op &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
           peek().text == "<=" || peek().text == ">=")) {
        const std::string op = next().text;
        e = binary(op, std::move(e), concat(d));
      } else if (is_name("in")) {
        next();
        e = binary("in", std::move(e), concat(d));
      } else if (is_name("not") && peek(1).kind == Tok::Name && peek(1).text == "in") {
        next(), next();
        e = binary("not in", std::move(e), concat(d));
      } else {
        return e;
      }
    }
  }
  ExprPtr concat(int d) {
    auto e = additive(d);
    while (is_op("~")) {
      next();
      e = binary("~", std::move(e), additive(d));
    }
    return e;
  }
  ExprPtr additive(int d) {
    auto e = term(d);
    while (is_op("+") || is_op("-")) {
      const std::string op = next().text;
      e = binary(op, std::move(e), term(d));
    }
    return e;
  }
  ExprPtr term(int d) {
    auto e = unary(d);
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().text;
      e = binary(op, std::move(e), unary(d));
    }
    return e;
  }
  ExprPtr unary(int d) {
    if (is_op("-") || is_op("+")) {
      auto e = make(Expr::Unary);
      e->name = next().text;
      e->args.push_back(unary(d + 1));
      return e;
    }
    return filtered(postfix(primary(d), d), d);
  }
  // x | filter(args) | ..., x is [not] test [arg]
  ExprPtr filtered(ExprPtr e, int d) {
    for (;;) {
      if (is_op("|")) {
        next();
        auto f = make(Expr::Filter);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        if (is_op("(")) call_args(*f, d);
        e = std::move(f);
      } else if (is_name("is")) {
        next();
        auto t = make(Expr::Test);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          call_args(*t, d);
        } else if (peek().kind == Tok::String || peek().kind == Tok::Number) {
          t->args.push_back(primary(d));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
  void call_args(Expr& call, int d) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == Tok::Name && peek(1).kind == Tok::Op && peek(1).text == "=") {
        std::string key = next().text;
        next();
        call.kwargs.emplace_back(std::move(key), expression(d + 1));
      } else {
        call.args.push_back(expression(d + 1));
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }
  ExprPtr postfix(ExprPtr e, int d) {
    for (;;) {
      if (is_op(".")) {
        next();
        auto a = make(Expr::Attr);
        a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        next();
        ExprPtr parts[3];
        int colons = 0;
        while (!is_op("]")) {
          if (is_op(":")) {
            next();
            if (++colons > 2) fail_at(peek().line, "too many ':' in a slice");
            continue;
          }
          if (parts[colons]) fail_at(peek().line, "expected ']' or ':'");
          parts[colons] = expression(d + 1);
        }
        expect_op("]");
        auto s = make(colons ? Expr::Slice : Expr::Item);
        s->args.push_back(std::move(e));
        for (int k = 0; k < (colons ? 3 : 1); ++k) s->args.push_back(std::move(parts[k]));
        e = std::move(s);
      } else if (is_op("(")) {
        auto c = make(Expr::Call);
        c->args.push_back(std::move(e));
        call_args(*c, d);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  ExprPtr primary(int d) {
    if (d > kMaxDepth) fail_at(peek().line, "expression nested too deeply");
    const Tok tok = peek();
    if (tok.kind == Tok::Number || tok.kind == Tok::String) {
      next();
      auto e = make(Expr::Literal);
      e->value = tok.value;
      while (tok.kind == Tok::String && peek().kind == Tok::String)  // "a" "b" concatenates
        e->value = e->value.get<std::string>() + next().text;
      return e;
    }
    if (tok.kind == Tok::Name) {
      next();
      auto e = make(Expr::Literal);
      if (tok.text == "true" || tok.text == "True")
        e->value = true;
      else if (tok.text == "false" || tok.text == "False")
        e->value = false;
      else if (tok.text == "none" || tok.text == "None")
        e->value = nullptr;
      else {
        e->kind = Expr::Var;
        e->name = tok.text;
      }
      return e;
    }
    if (is_op("(")) {
      next();
      auto e = expression(d + 1);
      if (is_op(",")) {  // a tuple: a list will do
        auto list = make(Expr::List);
        list->args.push_back(std::move(e));
        while (is_op(",")) {
          next();
          if (is_op(")")) break;
          list->args.push_back(expression(d + 1));
        }
        e = std::move(list);
      }
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      next();
      auto list = make(Expr::List);
      while (!is_op("]")) {
        list->args.push_back(expression(d + 1));
        if (!is_op(",")) break;
        next();
      }
      expect_op("]");
      return list;
    }
    if (is_op("{")) {
      next();
      auto dict = make(Expr::Dict);
      while (!is_op("}")) {
        dict->args.push_back(expression(d + 1));
        expect_op(":");
        dict->args.push_back(expression(d + 1));
        if (!is_op(",")) break;
        next();
      }
      expect_op("}");
      return dict;
    }
    fail_at(tok.line, tok.kind == Tok::End ? "unexpected end of expression"
                                           : "unexpected '" + tok.text + "'");
  }

  std::vector<Tok> t_;
  size_t i_ = 0;
};

// Builds the statement tree from the template pieces.
class TreeBuilder {
 public:
  explicit TreeBuilder(std::vector<Piece> pieces) : p_(std::move(pieces)) {}

  Body parse_all() {
    std::string stop;
    Body body = parse_body({}, &stop);
    if (!stop.empty()) fail_at(last_line_, "unexpected '{% " + stop + " %}'");
    return body;
  }

 private:
  // Parses nodes until a statement whose keyword is in `ends` (returned in *stop, the parser
  // positioned after it with its tokens in stop_parser_).
  Body parse_body(const std::vector<std::string>& ends, std::string* stop, int depth = 0) {
    if (depth > kMaxDepth) fail_at(last_line_, "blocks nested too deeply");
    Body body;
    while (i_ < p_.size()) {
      const Piece& piece = p_[i_++];
      last_line_ = piece.line;
      if (piece.kind == Piece::Text) {
        if (piece.text.empty()) continue;
        auto n = node(Node::Text, piece.line);
        n->text = piece.text;
        body.push_back(std::move(n));
        continue;
      }
      auto parser = std::make_unique<Parser>(lex_expression(piece.text, piece.line));
      if (piece.kind == Piece::Expr) {
        auto n = node(Node::Output, piece.line);
        n->expr = parser->expression();
        parser->expect_end();
        body.push_back(std::move(n));
        continue;
      }
      const std::string keyword = parser->expect_name();
      if (std::find(ends.begin(), ends.end(), keyword) != ends.end()) {
        *stop = keyword;
        stop_parser_ = std::move(parser);
        return body;
      }
      body.push_back(statement(keyword, *parser, piece.line, depth));
    }
    if (!ends.empty())
      fail_at(last_line_, "missing '{% " + ends.back() + " %}' (template ended inside a block)");
    return body;
  }

  std::unique_ptr<Node> node(Node::Kind k, int line) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->line = line;
    return n;
  }

  std::unique_ptr<Node> statement(const std::string& kw, Parser& ps, int line, int depth) {
    if (kw == "if") {
      auto n = node(Node::If, line);
      ExprPtr cond = ps.expression();
      ps.expect_end();
      for (;;) {
        std::string stop;
        Body body = parse_body({"elif", "else", "endif"}, &stop, depth + 1);
        n->branches.emplace_back(std::move(cond), std::move(body));
        if (stop == "endif") break;
        if (stop == "else") {
          stop_parser_->expect_end();
          Body other = parse_body({"endif"}, &stop, depth + 1);
          n->branches.emplace_back(nullptr, std::move(other));
          break;
        }
        cond = stop_parser_->expression();
        stop_parser_->expect_end();
      }
      return n;
    }
    if (kw == "for") {
      auto n = node(Node::For, line);
      n->targets.push_back(ps.expect_name());
      while (ps.is_op(",")) {
        ps.next();
        n->targets.push_back(ps.expect_name());
      }
      if (!ps.is_name("in")) fail_at(line, "expected 'in' in the for statement");
      ps.next();
      n->expr = ps.expression();  // `x if c` would be read as a conditional: split it back
      if (n->expr->kind == Expr::Cond && !n->expr->args[2]) {
        n->filter = std::move(n->expr->args[0]);
        n->expr = std::move(n->expr->args[1]);
      }
      ps.expect_end();
      std::string stop;
      n->body = parse_body({"else", "endfor"}, &stop, depth + 1);
      if (stop == "else") n->else_body = parse_body({"endfor"}, &stop, depth + 1);
      return n;
    }
    if (kw == "set") {
      auto n = node(Node::Set, line);
      n->targets.push_back(ps.expect_name());
      if (ps.is_op(".")) {
        ps.next();
        n->targets.push_back(ps.expect_name());
      }
      if (!ps.is_op("=")) {  // {% set x %}...{% endset %}
        ps.expect_end();
        n->kind = Node::SetBlock;
        std::string stop;
        n->body = parse_body({"endset"}, &stop, depth + 1);
        return n;
      }
      ps.next();
      n->expr = ps.expression();
      ps.expect_end();
      return n;
    }
    if (kw == "break" || kw == "continue") {
      ps.expect_end();
      return node(kw == "break" ? Node::Break : Node::Continue, line);
    }
    if (kw == "generation") {  // transformers' assistant-mask marker: renders its body
      ps.expect_end();
      auto n = node(Node::If, line);
      auto yes = std::make_unique<Expr>();
      yes->kind = Expr::Literal;
      yes->value = true;
      std::string stop;
      n->branches.emplace_back(std::move(yes), parse_body({"endgeneration"}, &stop, depth + 1));
      return n;
    }
    if (kw.starts_with("end") || kw == "elif" || kw == "else")
      fail_at(line, "unexpected '{% " + kw + " %}'");
    fail_at(line, "unsupported statement '{% " + kw + " %}'");
  }

  std::vector<Piece> p_;
  size_t i_ = 0;
  int last_line_ = 1;
  std::unique_ptr<Parser> stop_parser_;
};

// ------------------------------------------------------------------------------ evaluation

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  explicit Renderer(const Json& globals) {
    scopes_.emplace_back();
    for (const auto& [k, v] : globals.items()) scopes_.back()[k] = Value::of(v);
  }

  Flow render(const Body& body, std::string& out, int depth = 0) {
    if (depth > kMaxDepth) fail_at(body.empty() ? 0 : body[0]->line, "blocks nested too deeply");
    for (const auto& n : body) {
      step(n->line);
      const Flow f = render_node(*n, out, depth);
      if (f != Flow::Normal) return f;
      if (out.size() > kMaxOutput) fail_at(n->line, "rendered output exceeds 16 MiB");
    }
    return Flow::Normal;
  }

 private:
  void step(int line) {
    if (++steps_ > kMaxSteps) fail_at(line, "template runs too long (step limit reached)");
  }

  Flow render_node(const Node& n, std::string& out, int depth) {
    switch (n.kind) {
      case Node::Text:
        out += n.text;
        return Flow::Normal;
      case Node::Output:
        out += to_text(eval(*n.expr));
        return Flow::Normal;
      case Node::If:
        for (const auto& [cond, body] : n.branches)
          if (!cond || truthy(eval(*cond))) return render(body, out, depth + 1);
        return Flow::Normal;
      case Node::For:
        return render_for(n, out, depth);
      case Node::Set:
        assign(n, eval(*n.expr));
        return Flow::Normal;
      case Node::SetBlock: {
        std::string captured;
        render(n.body, captured, depth + 1);
        assign(n, Value::of(captured));
        return Flow::Normal;
      }
      case Node::Break:
        return Flow::Break;
      case Node::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  void assign(const Node& n, Value v) {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = std::move(v);
      return;
    }
    const Value target = lookup(n.targets[0]);
    if (!target.ns)
      fail_at(n.line, "'" + n.targets[0] + "' is not a namespace(): cannot set an attribute");
    (*target.ns)[n.targets[1]] = v.json();
  }

  Flow render_for(const Node& n, std::string& out, int depth) {
    const Value seq = eval(*n.expr);
    std::vector<Json> items;
    const Json& j = seq.json();
    if (seq.undefined || j.is_null()) {
      // iterating over undefined renders nothing, as Jinja's default Undefined does
    } else if (j.is_array()) {
      items.assign(j.begin(), j.end());
    } else if (j.is_object()) {
      for (const auto& [k, v] : j.items()) items.emplace_back(k);
    } else if (j.is_string()) {
      for (char c : j.get<std::string>()) items.emplace_back(std::string(1, c));
    } else {
      fail_at(n.line, "cannot iterate over " + py_repr(j));
    }
    scopes_.emplace_back();
    if (n.filter) {
      std::vector<Json> kept;
      for (auto& item : items) {
        bind(n, item);
        if (truthy(eval(*n.filter))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      step(n.line);
      scopes_.back().clear();
      bind(n, items[i]);
      const auto len = static_cast<int64_t>(items.size()), k = static_cast<int64_t>(i);
      Value loop;
      loop.loop_index = k;
      loop.loop_length = len;
      scopes_.back()["loop"] = std::move(loop);
      if (render(n.body, out, depth + 1) == Flow::Break) break;
    }
    scopes_.pop_back();
    if (items.empty()) render(n.else_body, out, depth + 1);
    return Flow::Normal;
  }

  void bind(const Node& n, const Json& item) {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = Value::of(item);
      return;
    }
    if (!item.is_array() || item.size() != n.targets.size())
      fail_at(n.line, fmt::format("cannot unpack {} into {} loop variables", py_repr(item),
                                  n.targets.size()));
    for (size_t k = 0; k < n.targets.size(); ++k) scopes_.back()[n.targets[k]] = Value::of(item[k]);
  }

  const Value& lookup(const std::string& name) const {
    static const Value undefined = Value::undef();
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (const auto f = it->find(name); f != it->end()) return f->second;
    return undefined;
  }

  static const Json& need(const Value& v, const Expr& e, const char* what) {
    if (v.undefined) fail_at(e.line, std::string(what) + " of an undefined value");
    return v.json();
  }

  static Value loop_attribute(const Value& loop, const Expr& e) {
    const int64_t k = loop.loop_index, n = loop.loop_length;
    if (e.name == "index") return Value::of(k + 1);
    if (e.name == "index0") return Value::of(k);
    if (e.name == "first") return Value::of(k == 0);
    if (e.name == "last") return Value::of(k + 1 == n);
    if (e.name == "length") return Value::of(n);
    if (e.name == "revindex") return Value::of(n - k);
    if (e.name == "revindex0") return Value::of(n - k - 1);
    fail_at(e.line, "loop." + e.name + " is not supported");
  }

  static Value item_of(const Value& obj, const Json& key, const Expr& e) {
    const Json& j = need(obj, e, "item access");
    if (j.is_object() && key.is_string()) {
      const auto it = j.find(key.get<std::string>());
      return it == j.end() ? Value::undef() : Value::of(*it);
    }
    if ((j.is_array() || j.is_string()) && key.is_number_integer()) {
      const auto n = static_cast<int64_t>(j.is_array() ? j.size() : j.get<std::string>().size());
      int64_t i = key.get<int64_t>();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undef();
      return j.is_array() ? Value::of(j[size_t(i)])
                          : Value::of(std::string(1, j.get<std::string>()[size_t(i)]));
    }
    return Value::undef();
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    const Json& j = need(obj, e, "slicing");
    if (!j.is_array() && !j.is_string()) fail_at(e.line, "cannot slice " + py_repr(j));
    const auto n = static_cast<int64_t>(j.is_array() ? j.size() : j.get<std::string>().size());
    const auto bound = [&](const ExprPtr& p) -> std::optional<int64_t> {
      if (!p) return std::nullopt;
      const Value v = eval(*p);
      if (v.undefined || v.json().is_null()) return std::nullopt;
      if (!v.json().is_number_integer()) fail_at(e.line, "slice bounds must be integers");
      return v.json().get<int64_t>();
    };
    const int64_t stepv = bound(e.args[3]).value_or(1);
    if (stepv == 0) fail_at(e.line, "slice step cannot be zero");
    const auto clamp = [&](std::optional<int64_t> b, int64_t dflt) {
      if (!b) return dflt;
      int64_t v = *b < 0 ? *b + n : *b;
      return stepv > 0 ? std::clamp<int64_t>(v, 0, n) : std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t start = clamp(bound(e.args[1]), stepv > 0 ? 0 : n - 1);
    const int64_t stop = clamp(bound(e.args[2]), stepv > 0 ? n : -1);
    Json out = j.is_array() ? Json::array() : Json("");
    for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) {
      if (j.is_array())
        out.push_back(j[size_t(i)]);
      else
        out.get_ref<std::string&>() += j.get<std::string>()[size_t(i)];
    }
    return Value::of(std::move(out));
  }

  Value eval(const Expr& e, int depth = 0) {
    if (depth > kMaxDepth) fail_at(e.line, "expression nested too deeply");
    switch (e.kind) {
      case Expr::Literal:
        return Value::of(e.value);
      case Expr::Var:
        return lookup(e.name);
      case Expr::Attr: {
        const Value obj = eval(*e.args[0], depth + 1);
        if (obj.undefined) fail_at(e.line, "'" + e.name + "' of an undefined value");
        if (obj.loop_index >= 0) return loop_attribute(obj, e);
        if (obj.ns) {
          const auto it = obj.ns->find(e.name);
          return it == obj.ns->end() ? Value::undef() : Value::of(*it);
        }
        return item_of(obj, Json(e.name), e);
      }
      case Expr::Item:
        return item_of(eval(*e.args[0], depth + 1), eval(*e.args[1], depth + 1).json(), e);
      case Expr::Slice:
        return slice(e);
      case Expr::Call:
        return call(e, depth);
      case Expr::Filter:
        return filter(e, depth);
      case Expr::Test:
        return Value::of(test(e, depth) != e.negated);
      case Expr::Unary: {
        const Value v = eval(*e.args[0], depth + 1);
        if (e.name == "not") return Value::of(!truthy(v));
        const Json& j = need(v, e, "arithmetic");
        if (!j.is_number()) fail_at(e.line, "unary " + e.name + " needs a number");
        if (e.name == "+") return v;
        return j.is_number_integer() ? Value::of(-j.get<int64_t>()) : Value::of(-j.get<double>());
      }
      case Expr::Binary:
        return binary(e, depth);
      case Expr::Cond:
        if (truthy(eval(*e.args[0], depth + 1))) return eval(*e.args[1], depth + 1);
        return e.args[2] ? eval(*e.args[2], depth + 1) : Value::undef();
      case Expr::List: {
        Json list = Json::array();
        for (const auto& a : e.args) list.push_back(eval(*a, depth + 1).json());
        return Value::of(std::move(list));
      }
      case Expr::Dict: {
        Json dict = Json::object();
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k], depth + 1);
          if (!key.json().is_string()) fail_at(e.line, "dict keys must be strings");
          dict[key.json().get<std::string>()] = eval(*e.args[k + 1], depth + 1).json();
        }
        return Value::of(std::move(dict));
      }
    }
    return Value::undef();
  }

  static double num(const Json& j, const Expr& e) {
    if (j.is_boolean()) return j.get<bool>();
    if (!j.is_number()) fail_at(e.line, "'" + e.name + "' needs numbers, got " + py_repr(j));
    return j.get<double>();
  }

  static bool equal(const Value& a, const Value& b) {
    if (a.undefined || b.undefined) return a.undefined && b.undefined;
    const Json &x = a.json(), &y = b.json();
    if (x.is_number() && y.is_number()) return x.get<double>() == y.get<double>();
    return x == y;
  }

  Value binary(const Expr& e, int depth) {
    const std::string& op = e.name;
    if (op == "and") {
      Value l = eval(*e.args[0], depth + 1);
      return truthy(l) ? eval(*e.args[1], depth + 1) : l;
    }
    if (op == "or") {
      Value l = eval(*e.args[0], depth + 1);
      return truthy(l) ? l : eval(*e.args[1], depth + 1);
    }
    const Value l = eval(*e.args[0], depth + 1), r = eval(*e.args[1], depth + 1);
    if (op == "~") return Value::of(to_text(l) + to_text(r));
    if (op == "==") return Value::of(equal(l, r));
    if (op == "!=") return Value::of(!equal(l, r));
    if (op == "in" || op == "not in") {
      const Json& hay = need(r, e, "'in'");
      bool found = false;
      if (hay.is_string())
        found = hay.get<std::string>().find(to_text(l)) != std::string::npos;
      else if (hay.is_array())
        found = std::any_of(hay.begin(), hay.end(),
                            [&](const Json& x) { return equal(Value::of(x), l); });
      else if (hay.is_object())
        found = l.json().is_string() && hay.contains(l.json().get<std::string>());
      else
        fail_at(e.line, "'in' needs a string, list or dict on the right");
      return Value::of(found == (op == "in"));
    }
    const Json& x = need(l, e, "an operator");
    const Json& y = need(r, e, "an operator");
    if (op == "+") {
      if (x.is_string() && y.is_string())
        return Value::of(x.get<std::string>() + y.get<std::string>());
      if (x.is_array() && y.is_array()) {
        Json out = x;
        out.insert(out.end(), y.begin(), y.end());
        return Value::of(std::move(out));
      }
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c = 0;
      if (x.is_string() && y.is_string())
        c = x.get<std::string>().compare(y.get<std::string>());
      else
        c = num(x, e) < num(y, e) ? -1 : num(x, e) > num(y, e) ? 1 : 0;
      return Value::of(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "*" && x.is_string() && y.is_number_integer()) {
      std::string out;
      for (int64_t k = 0; k < y.get<int64_t>() && out.size() < kMaxOutput; ++k)
        out += x.get<std::string>();
      return Value::of(out);
    }
    const bool ints =
        (x.is_number_integer() || x.is_boolean()) && (y.is_number_integer() || y.is_boolean());
    const double a = num(x, e), b = num(y, e);
    if ((op == "/" || op == "//" || op == "%") && b == 0) fail_at(e.line, "division by zero");
    if (op == "/") return Value::of(a / b);
    if (ints) {
      const auto p = static_cast<int64_t>(a), q = static_cast<int64_t>(b);
      if (op == "+") return Value::of(p + q);
      if (op == "-") return Value::of(p - q);
      if (op == "*") return Value::of(p * q);
      const int64_t fdiv = p / q - ((p % q != 0) && ((p < 0) != (q < 0)));
      if (op == "//") return Value::of(fdiv);
      if (op == "%") return Value::of(p - fdiv * q);
    }
    if (op == "+") return Value::of(a + b);
    if (op == "-") return Value::of(a - b);
    if (op == "*") return Value::of(a * b);
    if (op == "//") return Value::of(std::floor(a / b));
    if (op == "%") return Value::of(a - std::floor(a / b) * b);
    fail_at(e.line, "unsupported operator '" + op + "'");
  }

  std::vector<Value> eval_args(const Expr& e, size_t first, int depth) {
    std::vector<Value> out;
    for (size_t k = first; k < e.args.size(); ++k) out.push_back(eval(*e.args[k], depth + 1));
    return out;
  }

  Value kwarg(const Expr& e, const std::string& name, int depth) {
    for (const auto& [k, v] : e.kwargs)
      if (k == name) return eval(*v, depth + 1);
    return Value::undef();
  }

  static std::string str_arg(const std::vector<Value>& args, size_t i, const Expr& e,
                             const std::string& dflt = {}) {
    if (i >= args.size() || args[i].undefined || args[i].json().is_null()) return dflt;
    if (!args[i].json().is_string()) fail_at(e.line, "'" + e.name + "' needs a string argument");
    return args[i].json().get<std::string>();
  }

  static std::string strip(std::string s, const std::string& chars, bool left, bool right) {
    const std::string set = chars.empty() ? std::string(" \t\n\r\f\v") : chars;
    if (right) s.erase(s.find_last_not_of(set) + 1);
    if (left) s.erase(0, std::min(s.find_first_not_of(set), s.size()));
    return s;
  }

  static std::string title(std::string s, bool only_first) {
    bool start = true;
    for (char& c : s) {
      const bool alpha = std::isalpha(static_cast<unsigned char>(c));
      c = start && alpha           ? char(std::toupper(static_cast<unsigned char>(c)))
          : (only_first || !start) ? char(std::tolower(static_cast<unsigned char>(c)))
                                   : c;
      if (only_first)
        start = false;
      else
        start = !alpha;
    }
    return s;
  }

  static Json items_of(const Json& j) {
    Json out = Json::array();
    for (const auto& [k, v] : j.items()) out.push_back(Json::array({k, v}));
    return out;
  }

  // Methods of strings and dicts, and the global functions.
  Value call(const Expr& e, int depth) {
    const Expr& callee = *e.args[0];
    const std::vector<Value> args = eval_args(e, 1, depth);
    if (callee.kind == Expr::Var) {
      const std::string& f = callee.name;
      if (f == "raise_exception")
        fail("chat template line {}: the template raised an error: {}", e.line,
             args.empty() ? "" : to_text(args[0]));
      if (f == "namespace") {
        Value ns;
        ns.ns = std::make_shared<Json>(Json::object());
        for (const auto& [k, v] : e.kwargs) (*ns.ns)[k] = eval(*v, depth + 1).json();
        return ns;
      }
      if (f == "range") {
        std::vector<int64_t> b;
        for (const auto& a : args) {
          if (!a.json().is_number_integer()) fail_at(e.line, "range() needs integers");
          b.push_back(a.json().get<int64_t>());
        }
        if (b.empty() || b.size() > 3) fail_at(e.line, "range() takes 1 to 3 arguments");
        const int64_t start = b.size() > 1 ? b[0] : 0, stop = b.size() > 1 ? b[1] : b[0];
        const int64_t stepv = b.size() > 2 ? b[2] : 1;
        if (stepv == 0) fail_at(e.line, "range() step cannot be zero");
        const double count = std::ceil((double(stop) - double(start)) / double(stepv));
        if (count > 1e6) fail_at(e.line, "range() of more than 1000000 items");
        Json out = Json::array();
        for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) {
          step(e.line);
          out.push_back(i);
        }
        return Value::of(std::move(out));
      }
      if (f == "strftime_now") {
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        char buf[256];
        const size_t n = std::strftime(buf, sizeof buf, str_arg(args, 0, e).c_str(), &tm);
        return Value::of(std::string(buf, n));
      }
      fail_at(e.line, "unknown function '" + f + "'");
    }
    if (callee.kind != Expr::Attr) fail_at(e.line, "only functions and methods can be called");
    const Value obj = eval(*callee.args[0], depth + 1);
    const std::string& m = callee.name;
    const Json& j = need(obj, e, ("method '" + m + "'").c_str());
    if (j.is_string()) {
      const std::string s = j.get<std::string>();
      if (m == "strip" || m == "lstrip" || m == "rstrip")
        return Value::of(strip(s, str_arg(args, 0, callee), m != "rstrip", m != "lstrip"));
      if (m == "startswith" || m == "endswith") {
        const std::string p = str_arg(args, 0, callee);
        return Value::of(m == "startswith" ? s.starts_with(p) : s.ends_with(p));
      }
      if (m == "upper" || m == "lower") {
        std::string out = s;
        for (char& c : out)
          c = char(m == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
        return Value::of(out);
      }
      if (m == "title" || m == "capitalize") return Value::of(title(s, m == "capitalize"));
      if (m == "replace") {
        const std::string from = str_arg(args, 0, callee), to = str_arg(args, 1, callee);
        std::string out;
        if (from.empty()) return Value::of(s);
        size_t pos = 0;
        for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
          out.append(s, pos, hit - pos).append(to);
        return Value::of(out.append(s, pos));
      }
      if (m == "split") return Value::of(split(s, args, callee));
      if (m == "join") {
        if (args.empty() || !args[0].json().is_array()) fail_at(e.line, "join() needs a list");
        std::string out;
        bool first = true;
        for (const auto& x : args[0].json()) {
          out += (first ? "" : s) + py_str(x);
          first = false;
        }
        return Value::of(out);
      }
    } else if (j.is_object()) {
      if (m == "items") return Value::of(items_of(j));
      if (m == "keys" || m == "values") {
        Json out = Json::array();
        for (const auto& [k, v] : j.items()) out.push_back(m == "keys" ? Json(k) : v);
        return Value::of(std::move(out));
      }
      if (m == "get") {
        const Value v = item_of(obj, args.empty() ? Json() : args[0].json(), e);
        return v.undefined ? (args.size() > 1 ? args[1] : Value::of(nullptr)) : v;
      }
    }
    fail_at(e.line, "unsupported method '" + m + "' on " + py_repr(j).substr(0, 40));
  }

  static Json split(const std::string& s, const std::vector<Value>& args, const Expr& e) {
    Json out = Json::array();
    const std::string sep = str_arg(args, 0, e);
    int64_t max =
        args.size() > 1 && args[1].json().is_number_integer() ? args[1].json().get<int64_t>() : -1;
    if (sep.empty()) {  // Python's split(): runs of whitespace, no empty pieces
      size_t i = 0;
      for (;;) {
        i = s.find_first_not_of(" \t\n\r\f\v", i);
        if (i == std::string::npos) break;
        if (max-- == 0) {
          out.push_back(strip(s.substr(i), "", false, true));
          break;
        }
        const size_t j = std::min(s.find_first_of(" \t\n\r\f\v", i), s.size());
        out.push_back(s.substr(i, j - i));
        i = j;
      }
      return out;
    }
    size_t pos = 0;
    for (size_t hit; max-- != 0 && (hit = s.find(sep, pos)) != std::string::npos;
         pos = hit + sep.size())
      out.push_back(s.substr(pos, hit - pos));
    out.push_back(s.substr(pos));
    return out;
  }

  Value filter(const Expr& e, int depth) {
    const Value v = eval(*e.args[0], depth + 1);
    const std::vector<Value> args = eval_args(e, 1, depth);
    const std::string& f = e.name;
    if (f == "default" || f == "d") {
      const bool boolean = !args.empty() && args.size() > 1 && truthy(args[1]);
      if (v.undefined || (boolean && !truthy(v))) return args.empty() ? Value::of("") : args[0];
      return v;
    }
    if (f == "safe") return v;
    if (f == "string") return Value::of(to_text(v));
    const Json& j = need(v, e, ("filter '" + f + "'").c_str());
    if (f == "trim") return Value::of(strip(py_str(j), str_arg(args, 0, e), true, true));
    if (f == "length" || f == "count") {
      if (j.is_string()) return Value::of(static_cast<int64_t>(j.get<std::string>().size()));
      if (j.is_array() || j.is_object()) return Value::of(static_cast<int64_t>(j.size()));
      fail_at(e.line, "'length' of " + py_repr(j));
    }
    if (f == "tojson") {
      const Value indent = args.empty() ? kwarg(e, "indent", depth) : args[0];
      std::string out;
      dump_json(j, indent.json().is_number_integer() ? int(indent.json().get<int64_t>()) : 0, 0,
                out);
      return Value::of(out);
    }
    if (f == "items") {
      if (!j.is_object()) fail_at(e.line, "'items' needs a dict");
      return Value::of(items_of(j));
    }
    if (f == "upper" || f == "lower" || f == "capitalize" || f == "title") {
      std::string s = py_str(j);
      if (f == "upper" || f == "lower")
        for (char& c : s)
          c = char(f == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
      else
        s = title(s, f == "capitalize");
      return Value::of(s);
    }
    if (f == "first" || f == "last") {
      if (!j.is_array() && !j.is_string()) fail_at(e.line, "'" + f + "' needs a list");
      if (j.empty() || (j.is_string() && j.get<std::string>().empty())) return Value::undef();
      return item_of(v, Json(f == "first" ? 0 : -1), e);
    }
    if (f == "join") {
      if (!j.is_array()) fail_at(e.line, "'join' needs a list");
      const std::string sep = str_arg(args, 0, e);
      std::string out;
      for (size_t k = 0; k < j.size(); ++k) out += (k ? sep : "") + py_str(j[k]);
      return Value::of(out);
    }
    if (f == "list") {
      if (j.is_array()) return v;
      Json out = Json::array();
      if (j.is_string())
        for (char c : j.get<std::string>()) out.push_back(std::string(1, c));
      else if (j.is_object())
        for (const auto& [k, x] : j.items()) out.push_back(k);
      else
        fail_at(e.line, "'list' of " + py_repr(j));
      return Value::of(std::move(out));
    }
    if (f == "reverse") {
      if (j.is_string()) {
        std::string s = j.get<std::string>();
        return Value::of(std::string(s.rbegin(), s.rend()));
      }
      if (!j.is_array()) fail_at(e.line, "'reverse' needs a list or string");
      Json out = Json::array();
      for (auto it = j.rbegin(); it != j.rend(); ++it) out.push_back(*it);
      return Value::of(std::move(out));
    }
    if (f == "replace") {
      const std::string s = py_str(j), from = str_arg(args, 0, e), to = str_arg(args, 1, e);
      if (from.empty()) return Value::of(s);
      std::string out;
      size_t pos = 0;
      for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
        out.append(s, pos, hit - pos).append(to);
      return Value::of(out.append(s, pos));
    }
    if (f == "int") {
      if (j.is_number()) return Value::of(static_cast<int64_t>(j.get<double>()));
      try {
        return Value::of(static_cast<int64_t>(std::stoll(py_str(j))));
      } catch (const std::exception&) {
        return Value::of(int64_t{0});
      }
    }
    if (f == "float") {
      if (j.is_number()) return Value::of(j.get<double>());
      try {
        return Value::of(std::stod(py_str(j)));
      } catch (const std::exception&) {
        return Value::of(0.0);
      }
    }
    if (f == "abs") {
      if (j.is_number_integer()) return Value::of(std::abs(j.get<int64_t>()));
      return Value::of(std::fabs(num(j, e)));
    }
    fail_at(e.line, "unsupported filter '" + f + "'");
  }

  bool test(const Expr& e, int depth) {
    const Value v = eval(*e.args[0], depth + 1);
    const std::string& t = e.name;
    const Json& j = v.json();
    if (t == "defined") return !v.undefined;
    if (t == "undefined") return v.undefined;
    if (v.undefined) return false;
    if (t == "none") return j.is_null();
    if (t == "string") return j.is_string();
    if (t == "number") return j.is_number();
    if (t == "integer") return j.is_number_integer();
    if (t == "float") return j.is_number_float();
    if (t == "boolean") return j.is_boolean();
    if (t == "mapping") return j.is_object() || v.ns;
    if (t == "iterable") return j.is_array() || j.is_object() || j.is_string();
    if (t == "sequence") return j.is_array() || j.is_string() || j.is_object();
    if (t == "true") return j.is_boolean() && j.get<bool>();
    if (t == "false") return j.is_boolean() && !j.get<bool>();
    if (t == "even" || t == "odd") {
      if (!j.is_number_integer()) fail_at(e.line, "'" + t + "' needs an integer");
      return (j.get<int64_t>() % 2 == 0) == (t == "even");
    }
    if (t == "eq" || t == "equalto" || t == "sameas") {
      if (e.args.size() < 2) fail_at(e.line, "'" + t + "' needs an argument");
      return equal(v, eval(*e.args[1], depth + 1));
    }
    fail_at(e.line, "unsupported test '" + t + "'");
  }

  std::vector<std::map<std::string, Value>> scopes_;
  size_t steps_ = 0;
};

}  // namespace

std::string render_jinja(const std::string& source, const nlohmann::ordered_json& context) {
  const Body tree = TreeBuilder(split_template(source)).parse_all();
  Renderer r(context);
  std::string out;
  r.render(tree, out);
  return out;
}

std::string render_chat_template(const std::string& source, const nlohmann::ordered_json& messages,
                                 const std::string& bos_token, const std::string& eos_token,
                                 bool add_generation_prompt) {
  nlohmann::ordered_json context = {{"messages", messages},
                                    {"add_generation_prompt", add_generation_prompt},
                                    {"bos_token", bos_token},
                                    {"eos_token", eos_token}};
  return render_jinja(source, context);
}

}  // namespace lorahub
