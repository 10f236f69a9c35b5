// Chat templates: the Jinja templates models ship (tokenizer.chat_template in GGUF,
// chat_template in tokenizer_config.json, chat_template.jinja), rendered by a small
// interpreter for the subset of Jinja those templates use (Debian packages no C++ Jinja).
//
// Supported: text, {{ }}, {% %}, {# #}, whitespace control (-) and the trim_blocks +
// lstrip_blocks settings transformers renders with; if/elif/else, for (with `if` filter, else,
// loop.index/index0/first/last/length/revindex, break/continue), set (plain, namespace
// attribute, block), namespace(), range(), raise_exception(); literals, lists, dicts, attribute
// and item access, slices, `~ + - * / // % and or not in is`, conditional expressions; filters
// trim, length/count, tojson, items, join, default, upper/lower/capitalize/title, first/last,
// list, reverse, replace, string/int/float, safe, abs; tests defined/undefined/none/string/
// number/integer/float/boolean/mapping/iterable/sequence/true/false/even/odd; string methods
// strip/lstrip/rstrip/startswith/endswith/split/upper/lower/replace/title/capitalize/join,
// dict methods items/keys/values/get.
// Safe by construction: values are JSON data only (no attribute access beyond dict keys and
// the methods above), output, loop iterations and nesting are bounded. Errors throw Error
// naming the template line.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace lorahub {

// Renders `source` with `context` (an object) as its global variables.
std::string render_jinja(const std::string& source, const nlohmann::ordered_json& context);

// apply_chat_template(messages, add_generation_prompt=...) as transformers renders it: the
// template sees messages, add_generation_prompt, bos_token and eos_token.
std::string render_chat_template(const std::string& source, const nlohmann::ordered_json& messages,
                                 const std::string& bos_token, const std::string& eos_token,
                                 bool add_generation_prompt = true);

}  // namespace lorahub
