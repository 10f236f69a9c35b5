// multipart/form-data bodies (RFC 7578): the parts of a form upload, as views into the body.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorahub::http {

struct FormPart {
  std::string name;      // the form field
  std::string filename;  // "" when the part is not a file
  std::string content_type;
  std::string_view content;  // points into the body
};

// Throws http::Error(400) when `content_type` is not multipart/form-data with a boundary or the
// body is not well formed. At most `max_parts` parts.
std::vector<FormPart> parse_multipart(std::string_view content_type, std::string_view body,
                                      size_t max_parts = 1024);

}  // namespace lorahub::http
