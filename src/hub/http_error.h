// A failure with its HTTP status and, for huggingface_hub, its X-Error-Code (RepoNotFound,
// RevisionNotFound, EntryNotFound decide which Python exception the client raises). Thrown by
// the hub's request handlers, whatever HTTP layer carries them.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "core/error.h"

namespace lorahub::hub {

struct HttpError : Error {
  HttpError(int status, std::string message, std::string code = "", std::string commit = "")
      : Error(std::move(message)),
        status(status),
        code(std::move(code)),
        commit(std::move(commit)) {}
  int status;
  std::string code;
  std::string commit;
  nlohmann::json extra = nlohmann::json::object();  // more members of the JSON error body
};

}  // namespace lorahub::hub
