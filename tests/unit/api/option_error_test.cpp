// api::as_option (api/internal.h), the one helper that turns an engine Error into an OptionError
// naming the public field at fault, for every part of the public API (serve's Server too).
#include <gtest/gtest.h>

#include "api/internal.h"
#include "core/error.h"

namespace lorahub::api_test {
namespace {

// The field and message of the OptionError that f throws ("(none)" when it throws none).
template <typename F>
std::pair<std::string, std::string> option_error(F f) {
  try {
    f();
  } catch (const api::OptionError& e) {
    return {e.option(), e.what()};
  }
  return {"(none)", ""};
}

TEST(ApiOptionMalformed, AnErrorNamesTheFieldWithItsMessageUnchanged) {
  EXPECT_EQ(api::as_option("steps", [] { return 3; }), 3);  // a value passes through
  std::string s = "kept";
  api::as_option("steps", [&] { s += "!"; });  // so does void
  EXPECT_EQ(s, "kept!");
  EXPECT_EQ(option_error([] { api::as_option("select", [] { fail("bad rule '{}'", "x"); }); }),
            (std::pair<std::string, std::string>{"select", "bad rule 'x'"}));
  // An OptionError already names its field: it passes through as it is.
  EXPECT_EQ(option_error(
                [] { api::as_option("model", [] { throw api::OptionError("bf16", "inner"); }); }),
            (std::pair<std::string, std::string>{"bf16", "inner"}));
  // Anything that is not a lorahub::Error is not an option's fault.
  EXPECT_THROW(api::as_option("steps", [] { throw std::bad_alloc(); }), std::bad_alloc);
}

}  // namespace
}  // namespace lorahub::api_test
