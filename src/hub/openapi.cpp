#include "hub/openapi.h"

namespace lorahub::hub {
namespace {

// Schemas are as strict as the answers are fixed (required fields, enums, patterns) and leave
// room (additionalProperties) where huggingface_hub reads only part of an object.
constexpr std::string_view kDocument = R"json({
"openapi": "3.0.3",
"info": {
  "title": "lorahub module hub",
  "version": "1",
  "description": "LoRA modules shared through a Hugging Face compatible API: huggingface_hub downloads, lists and uploads (HF_HUB_DISABLE_XET=1), and `lorahub hub push/pull/search`. Errors are JSON {\"error\": ...}; X-Error-Code names RepoNotFound, RevisionNotFound and EntryNotFound."
},
"servers": [{"url": "/"}],
"components": {
  "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "a token from `lorahub hub token create`"}},
  "parameters": {
    "user": {"name": "user", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$"}, "example": "alice", "description": "owner of the repo"},
    "name": {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$"}, "example": "mod", "description": "repo name"},
    "rev": {"name": "rev", "in": "path", "required": true, "schema": {"type": "string"}, "example": "main", "description": "main, or a 40-digit revision sha"},
    "path": {"name": "path", "in": "path", "required": true, "schema": {"type": "string"}, "example": "adapter_config.json", "description": "file path inside the repo (may hold '/')"},
    "limit": {"name": "limit", "in": "query", "schema": {"type": "integer"}},
    "cursor": {"name": "cursor", "in": "query", "schema": {"type": "integer"}}
  },
  "responses": {
    "error": {"description": "a refused request (4xx) or a server fault (5xx)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
  },
  "schemas": {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Sha": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
    "Sibling": {"type": "object", "required": ["rfilename"], "properties": {
      "rfilename": {"type": "string"}, "size": {"type": "integer"}, "blobId": {"type": "string"},
      "lfs": {"type": "object", "properties": {"sha256": {"type": "string"}, "size": {"type": "integer"}}}}},
    "ModelInfo": {"type": "object", "required": ["id", "modelId", "sha", "author", "tags", "lorahub"], "properties": {
      "id": {"type": "string"}, "modelId": {"type": "string"}, "author": {"type": "string"},
      "sha": {"$ref": "#/components/schemas/Sha"}, "private": {"type": "boolean"},
      "createdAt": {"type": "string"}, "lastModified": {"type": "string"},
      "library_name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
      "siblings": {"type": "array", "items": {"$ref": "#/components/schemas/Sibling"}},
      "usedStorage": {"type": "integer"},
      "lorahub": {"type": "object", "required": ["base_model", "rank", "alpha", "targets", "revision"], "properties": {
        "base_model": {"type": "string"}, "rank": {"type": "integer"}, "alpha": {"type": "number"},
        "targets": {"type": "array", "items": {"type": "string"}}, "task": {"type": "string"},
        "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "license": {"type": "string"}, "revision": {"$ref": "#/components/schemas/Sha"},
        "parent": {"type": "string"}, "message": {"type": "string"}, "created": {"type": "string"},
        "embedding": {"type": "object", "description": "The module's retrieval embedding file (lorahub_embedding.json; listed with full=true or per model)",
          "required": ["file", "sha256", "size"], "properties": {"file": {"type": "string"}, "sha256": {"type": "string"}, "size": {"type": "integer"}}}}}}},
    "TreeEntry": {"type": "object", "required": ["type", "oid", "size", "path"], "properties": {
      "type": {"type": "string", "enum": ["file", "directory"]}, "oid": {"type": "string"},
      "size": {"type": "integer"}, "path": {"type": "string"},
      "lfs": {"type": "object", "properties": {"oid": {"type": "string"}, "size": {"type": "integer"}}}}},
    "Empty": {"type": "object"}
  }
},
"paths": {
  "/": {"get": {"summary": "the hub's web page", "responses": {
    "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
    "default": {"$ref": "#/components/responses/error"}}}},
  "/openapi.json": {"get": {"summary": "this document", "responses": {
    "200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}},
    "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models": {"get": {"summary": "list or search modules (huggingface_hub list_models)", "parameters": [
      {"name": "search", "in": "query", "schema": {"type": "string"}, "description": "text in the id, task or description"},
      {"name": "author", "in": "query", "schema": {"type": "string"}},
      {"name": "base_model", "in": "query", "schema": {"type": "string"}},
      {"name": "task", "in": "query", "schema": {"type": "string"}},
      {"name": "tag", "in": "query", "schema": {"type": "string"}},
      {"name": "filter", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "tags the module must all carry (peft, lora, base_model:adapter:X, or a pushed tag)"},
      {"name": "rank", "in": "query", "schema": {"type": "integer"}},
      {"name": "full", "in": "query", "schema": {"type": "string"}},
      {"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/cursor"}],
    "responses": {
      "200": {"description": "one page (Link: rel=next for more)", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/ModelInfo"}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/whoami-v2": {"get": {"summary": "who the token belongs to", "security": [{"token": []}], "responses": {
    "200": {"description": "the user", "content": {"application/json": {"schema": {"type": "object", "required": ["type", "name"], "properties": {"type": {"type": "string"}, "name": {"type": "string"}}}}}},
    "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}": {"get": {"summary": "model info at main", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}],
    "responses": {
      "200": {"description": "model info", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelInfo"}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/revision/{rev}": {"get": {"summary": "model info at a revision", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"}],
    "responses": {
      "200": {"description": "model info", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelInfo"}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/tree/{rev}": {"get": {"summary": "files and folders at the root", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"},
      {"name": "recursive", "in": "query", "schema": {"type": "string"}},
      {"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/cursor"}],
    "responses": {
      "200": {"description": "entries", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/TreeEntry"}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/tree/{rev}/{path}": {"get": {"summary": "files and folders under a folder", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"}, {"$ref": "#/components/parameters/path"},
      {"name": "recursive", "in": "query", "schema": {"type": "string"}},
      {"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/cursor"}],
    "responses": {
      "200": {"description": "entries", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/TreeEntry"}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/{user}/{name}/resolve/{rev}/{path}": {"get": {"summary": "download a file (Range supported; HEAD too)", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"}, {"$ref": "#/components/parameters/path"}],
    "responses": {
      "200": {"description": "the file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
      "206": {"description": "part of the file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/lorahub/push/{user}/{name}": {"post": {"summary": "push a whole module as a new revision (lorahub hub push)", "security": [{"token": []}], "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}],
    "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["meta", "file"], "properties": {
      "meta": {"type": "string", "description": "JSON: parent, message, task, description, tags, license"},
      "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
    "responses": {
      "200": {"description": "the new revision", "content": {"application/json": {"schema": {"type": "object", "required": ["commit", "repo", "files"], "properties": {
        "commit": {"$ref": "#/components/schemas/Sha"}, "repo": {"type": "string"}, "files": {"type": "integer"}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/repos/create": {"post": {"summary": "create an empty model repo (huggingface_hub create_repo; 409 when it exists)", "security": [{"token": []}],
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "properties": {
      "name": {"type": "string"}, "organization": {"type": "string", "nullable": true}, "type": {"type": "string", "enum": ["model"]}}}}}},
    "responses": {
      "200": {"description": "created", "content": {"application/json": {"schema": {"type": "object", "required": ["url", "name"], "properties": {"url": {"type": "string"}, "name": {"type": "string"}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/validate-yaml": {"post": {"summary": "check a model card's metadata before a commit", "security": [{"token": []}],
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["content"], "properties": {"content": {"type": "string"}, "repoType": {"type": "string"}}}}}},
    "responses": {
      "200": {"description": "no errors", "content": {"application/json": {"schema": {"type": "object", "required": ["errors", "warnings"], "properties": {"errors": {"type": "array"}, "warnings": {"type": "array"}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/preupload/{rev}": {"post": {"summary": "which files go through LFS", "security": [{"token": []}], "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"}],
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["files"], "properties": {
      "files": {"type": "array", "items": {"type": "object", "required": ["path", "sample", "size"], "properties": {
        "path": {"type": "string"}, "sample": {"type": "string", "description": "base64 of the first 512 bytes"}, "size": {"type": "integer"}}}}}}}}},
    "responses": {
      "200": {"description": "upload modes", "content": {"application/json": {"schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "object", "required": ["path", "uploadMode", "shouldIgnore"], "properties": {
          "path": {"type": "string"}, "uploadMode": {"type": "string", "enum": ["lfs", "regular"]}, "shouldIgnore": {"type": "boolean"},
          "oid": {"type": "string", "nullable": true}}}}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/commit/{rev}": {"post": {"summary": "commit files to main (NDJSON: a header line, then file / lfsFile / deletedFile / deletedFolder lines)", "security": [{"token": []}], "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"},
      {"name": "create_pr", "in": "query", "schema": {"type": "string"}}],
    "requestBody": {"required": true, "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
    "responses": {
      "200": {"description": "the new revision", "content": {"application/json": {"schema": {"type": "object", "required": ["commitOid", "commitUrl", "success"], "properties": {
        "commitOid": {"$ref": "#/components/schemas/Sha"}, "commitUrl": {"type": "string"}, "success": {"type": "boolean"}, "pullRequestUrl": {"type": "string", "nullable": true}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/{user}/{git_name}/info/lfs/objects/batch": {"post": {"summary": "git LFS batch API, upload with the basic transfer: signed upload URLs, and verify", "security": [{"token": []}], "parameters": [
      {"$ref": "#/components/parameters/user"},
      {"name": "git_name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]+\\.git$"}, "example": "mod.git", "description": "the repo name and .git"}],
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["operation", "objects"], "properties": {
      "operation": {"type": "string", "enum": ["upload"]}, "transfers": {"type": "array", "items": {"type": "string"}},
      "hash_algo": {"type": "string"}, "ref": {"type": "object"},
      "objects": {"type": "array", "items": {"type": "object", "required": ["oid", "size"], "properties": {"oid": {"type": "string"}, "size": {"type": "integer"}}}}}}}}},
    "responses": {
      "200": {"description": "actions per object (none: already stored)", "content": {"application/vnd.git-lfs+json": {"schema": {"type": "object", "required": ["transfer", "objects"], "properties": {
        "transfer": {"type": "string", "enum": ["basic"]}, "hash_algo": {"type": "string"},
        "objects": {"type": "array", "items": {"type": "object", "required": ["oid", "size"], "properties": {
          "oid": {"type": "string"}, "size": {"type": "integer"}, "authenticated": {"type": "boolean"},
          "actions": {"type": "object", "required": ["upload"], "properties": {
            "upload": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}, "expires_at": {"type": "string"}}},
            "verify": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}}},
          "error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}}}}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/lorahub/lfs/{user}/{name}/{oid}": {"put": {"summary": "an LFS object's content, to the signed URL the batch API gave", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"},
      {"name": "oid", "in": "path", "required": true, "schema": {"type": "string"}, "description": "SHA-256 of the content"},
      {"name": "size", "in": "query", "required": true, "schema": {"type": "integer"}},
      {"name": "expires", "in": "query", "required": true, "schema": {"type": "integer"}},
      {"name": "signature", "in": "query", "required": true, "schema": {"type": "string"}}],
    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    "responses": {
      "200": {"description": "stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Empty"}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/lorahub/lfs-verify/{user}/{name}": {"post": {"summary": "LFS verify: the object is stored", "security": [{"token": []}], "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}],
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["oid", "size"], "properties": {"oid": {"type": "string"}, "size": {"type": "integer"}}}}}},
    "responses": {
      "200": {"description": "stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Empty"}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/xet-read-token/{rev}": {"get": {"summary": "Xet storage: not served (always 501, telling to set HF_HUB_DISABLE_XET=1)", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"}],
    "responses": {"default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/xet-write-token/{rev}": {"get": {"summary": "Xet storage: not served (always 501, telling to set HF_HUB_DISABLE_XET=1)", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"}],
    "responses": {"default": {"$ref": "#/components/responses/error"}}}},
  "/api/xet-storage-is-not-served-here/set-HF_HUB_DISABLE_XET=1-to-upload-through-LFS": {"get": {"summary": "where the Xet token routes redirect: the error a client left on Xet shows", "responses": {
    "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/refs": {"get": {"summary": "branches (main) of a repo (huggingface_hub list_repo_refs)", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}],
    "responses": {
      "200": {"description": "refs", "content": {"application/json": {"schema": {"type": "object", "required": ["branches", "converts", "tags"], "properties": {
        "branches": {"type": "array", "items": {"type": "object", "required": ["name", "ref", "targetCommit"], "properties": {
          "name": {"type": "string"}, "ref": {"type": "string"}, "targetCommit": {"$ref": "#/components/schemas/Sha"}}}},
        "converts": {"type": "array"}, "tags": {"type": "array"}, "pullRequests": {"type": "array"}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}},
  "/api/models/{user}/{name}/commits/{rev}": {"get": {"summary": "revisions from rev back to the first (huggingface_hub list_repo_commits)", "parameters": [
      {"$ref": "#/components/parameters/user"}, {"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/rev"},
      {"$ref": "#/components/parameters/limit"}],
    "responses": {
      "200": {"description": "newest first", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "required": ["id", "authors", "date", "title", "message"], "properties": {
        "id": {"$ref": "#/components/schemas/Sha"}, "authors": {"type": "array", "items": {"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}}},
        "date": {"type": "string"}, "title": {"type": "string"}, "message": {"type": "string"}, "parents": {"type": "array", "items": {"type": "string"}}}}}}}},
      "default": {"$ref": "#/components/responses/error"}}}}
}
})json";

}  // namespace

std::string_view openapi_json() {
  return kDocument;
}

}  // namespace lorahub::hub
