// The hub's API as an OpenAPI 3 document, served at /openapi.json. Hand-written: every route of
// the server (HubServer::routes()) is in it and nothing else, which tests check both ways.
#pragma once
#include <string_view>

namespace lorahub::hub {

std::string_view openapi_json();

}  // namespace lorahub::hub
