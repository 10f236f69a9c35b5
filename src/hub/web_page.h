// The hub's browser page (served at /): search, a list of modules, and a module's card with its
// metadata and files. One self-contained HTML document compiled into the binary; it reads the
// same JSON API the Python clients use.
#pragma once
#include <string_view>

namespace lorahub::hub {

std::string_view web_page_html();

}  // namespace lorahub::hub
