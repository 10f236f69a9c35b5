// One way to report errors inside the library: throw lorahub::Error with a message that names
// the file, tensor or field at fault. The CLI catches it and prints one line.
#pragma once
#include <stdexcept>
#include <string>

#include "core/utf8.h"
#include "lorahub/check.h"  // fail, check
#include "lorahub/error.h"

namespace lorahub {

// lorahub::Error is public (include/lorahub/error.h): messages often quote bytes from untrusted
// input (names, JSON values, pickle globals); they are made valid UTF-8 there, once for every
// error, so that whoever shows one (a JSON response, a log line) never meets invalid text.

}  // namespace lorahub
