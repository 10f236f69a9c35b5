// The hub's HTTP failures: an http::Error with, for huggingface_hub, X-Error-Code (RepoNotFound,
// RevisionNotFound, EntryNotFound decide which Python exception the client raises) and
// X-Repo-Commit. Thrown by the request handlers and the before-body checks.
#pragma once
#include <string>

#include "http/message.h"

namespace lorahub::hub {

inline http::Error HttpError(int status, std::string message, std::string code = "",
                             std::string commit = "") {
  http::Headers headers;
  if (!code.empty()) headers.emplace("X-Error-Code", std::move(code));
  if (!commit.empty()) headers.emplace("X-Repo-Commit", std::move(commit));
  return http::Error(status, std::move(message), std::move(headers));
}

}  // namespace lorahub::hub
