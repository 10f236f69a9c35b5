// What a repo id ("user/name") and a file path inside a module may look like. The server checks
// every name it is sent and the client checks every name it is told, so that neither side ever
// writes outside its folder ("../", absolute paths, NUL, backslashes, ...).
#pragma once
#include <string>
#include <string_view>

namespace lorahub::hub {

// A user name or a repo name: 1-96 characters of [A-Za-z0-9._-], not starting with '.' or '-'
// and not "." / "..". Throws Error naming `what` and the bad value.
void validate_name(std::string_view name, std::string_view what);

// A user (namespace) name: a valid name that is not one of the hub's route words ("api",
// "models", "datasets", ...), compared case-insensitively as the Hugging Face Hub does, so that
// no repo id can read like one of the hub's own URLs. Throws Error.
void validate_user_name(std::string_view name);

// "user/name" with a valid user name and repo name; returns the user part. Throws Error.
std::string validate_repo_id(std::string_view repo_id);

// ASCII lower case: names are ASCII and compared case-insensitively (HF treats "Alice/Mod" and
// "alice/mod" as one repo).
std::string lower_ascii(std::string_view text);

// A relative path of '/'-separated valid names (at most 16 deep, 512 characters). Throws Error.
void validate_file_path(std::string_view path);

// At most the first 120 bytes of `text`, with every byte outside printable ASCII written as
// \xNN: safe in an error message (and in JSON) whatever the client sent.
std::string printable(std::string_view text);

// Percent-encodes everything but RFC 3986's unreserved characters, for query values and revs.
std::string percent_encode(std::string_view text);

}  // namespace lorahub::hub
