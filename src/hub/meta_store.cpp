#include "hub/meta_store.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/utf8.h"
#include "hub/hash.h"
#include "hub/names.h"

namespace lorahub::hub {
namespace {

// Portable between SQLite and PostgreSQL: only TEXT, BIGINT and DOUBLE PRECISION columns.
constexpr const char* kSchema[] = {
    "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, "
    "created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS repos (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "head TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS revisions (sha TEXT PRIMARY KEY, repo TEXT NOT NULL, "
    "parent TEXT NOT NULL, created BIGINT NOT NULL, message TEXT NOT NULL, "
    "base_model TEXT NOT NULL, lora_rank BIGINT NOT NULL, alpha DOUBLE PRECISION NOT NULL, "
    "targets TEXT NOT NULL, task TEXT NOT NULL, description TEXT NOT NULL, tags TEXT NOT NULL, "
    "license TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files (revision TEXT NOT NULL, path TEXT NOT NULL, "
    "sha256 TEXT NOT NULL, git_oid TEXT NOT NULL, size BIGINT NOT NULL, "
    "PRIMARY KEY (revision, path))",
    "CREATE TABLE IF NOT EXISTS tags (revision TEXT NOT NULL, tag TEXT NOT NULL, "
    "PRIMARY KEY (revision, tag))",
    "CREATE INDEX IF NOT EXISTS revisions_by_repo ON revisions (repo)",
    // Names differing only in case are one name (as on the Hugging Face Hub): the database
    // refuses a second spelling, and lookups match any spelling to the stored one.
    "CREATE UNIQUE INDEX IF NOT EXISTS repos_by_lower_id ON repos (LOWER(id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS users_by_lower_name ON users (LOWER(name))",
};

// The columns of a revision, in the order read_revision expects.
constexpr const char* kRevisionColumns =
    "v.sha, v.repo, v.parent, v.created, v.message, v.base_model, v.lora_rank, v.alpha, "
    "v.targets, v.task, v.description, v.tags, v.license";

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Stored rows are read defensively: a row that an older server, a hand edit or another client
// wrote badly (a subnormal alpha that std::stod refuses, invalid UTF-8, a truncated JSON list)
// must never make a listing fail. Text comes out valid UTF-8, numbers fall back to 0.
std::string text(const SqlRow& row, size_t i) {
  return row.at(i) ? to_valid_utf8(*row[i]) : std::string();
}

int64_t integer(const SqlRow& row, size_t i) {
  const std::string value = text(row, i);
  int64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  return ec == std::errc() ? out : 0;
}

double real(const SqlRow& row, size_t i) {
  const std::string value = text(row, i);
  char* end = nullptr;
  const double out = std::strtod(value.c_str(), &end);  // subnormals too (errno is ERANGE)
  return end != value.c_str() && std::isfinite(out) ? out : 0.0;
}

std::vector<std::string> json_strings(const std::string& text) {
  const auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!parsed.is_array()) return out;
  for (const auto& item : parsed)
    if (item.is_string()) out.push_back(item.get<std::string>());
  return out;
}

Revision read_revision(const SqlRow& row, size_t first = 0) {
  Revision rev;
  rev.sha = text(row, first + 0);
  rev.repo = text(row, first + 1);
  rev.parent = text(row, first + 2);
  rev.created = integer(row, first + 3);
  rev.message = text(row, first + 4);
  rev.meta.base_model = text(row, first + 5);
  rev.meta.rank = integer(row, first + 6);
  rev.meta.alpha = real(row, first + 7);
  rev.meta.targets = json_strings(text(row, first + 8));
  rev.meta.task = text(row, first + 9);
  rev.meta.description = text(row, first + 10);
  rev.meta.tags = json_strings(text(row, first + 11));
  rev.meta.license = text(row, first + 12);
  return rev;
}

RepoSummary read_summary(const SqlRow& row) {
  return {text(row, 0), text(row, 1), integer(row, 2), integer(row, 3), read_revision(row, 4)};
}

// LIKE pattern matching `needle` anywhere, with LIKE's wildcards in it taken literally.
std::string contains_pattern(const std::string& needle) {
  std::string out = "%";
  for (char c : needle) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out + "%";
}

std::string number(double value) {
  return fmt::format("{}", value);
}

}  // namespace

std::unique_ptr<MetaStore> MetaStore::open(const std::string& root, const std::string& db_url) {
  if (db_url.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    check(!ec, "{}: cannot create the hub root: {}", root, ec.message());
    return std::make_unique<MetaStore>(open_sqlite((std::filesystem::path(root) / "hub.sqlite3")));
  }
  check(db_url.starts_with("postgresql://") || db_url.starts_with("postgres://"),
        "database URL '{}' is not a postgresql:// URL", db_url);
  return std::make_unique<MetaStore>(open_postgres(db_url));
}

std::unique_ptr<MetaStore> MetaStore::open_existing(const std::string& root,
                                                    const std::string& db_url) {
  check(!db_url.empty() || std::filesystem::exists(std::filesystem::path(root) / "hub.sqlite3"),
        "{}: not a hub folder (no hub.sqlite3 in it; is its metadata in PostgreSQL?)", root);
  return open(root, db_url);
}

MetaStore::MetaStore(std::unique_ptr<SqlDb> db) : db_(std::move(db)) {
  create_schema();
}

void MetaStore::create_schema() {
  // Several servers starting at once on one PostgreSQL database can race on CREATE TABLE IF NOT
  // EXISTS (a unique violation in the catalog); the loser simply tries again.
  for (int attempt = 0;; ++attempt) {
    try {
      in_transaction(*db_, [&] {
        for (const char* statement : kSchema) db_->execute(statement, {});
      });
      return;
    } catch (const Error&) {
      if (attempt >= 4) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
    }
  }
}

std::string MetaStore::create_token(const std::string& user) {
  const std::string token = "lh_" + random_hex(24);
  validate_user_name(user);
  std::lock_guard lock(mutex_);
  in_transaction(*db_, [&] {
    const std::string created = std::to_string(now_seconds());
    db_->execute("INSERT INTO users (name, created) VALUES (?, ?) ON CONFLICT DO NOTHING",
                 {user, created});
    // The token belongs to the user as first spelled ("Alice" and "alice" are one user).
    const auto stored = db_->query("SELECT name FROM users WHERE LOWER(name) = LOWER(?)", {user});
    db_->execute("INSERT INTO tokens (hash, user_name, created) VALUES (?, ?, ?)",
                 {sha256_hex(token), text(stored.at(0), 0), created});
  });
  return token;
}

std::optional<std::string> MetaStore::user_for_token(const std::string& token) {
  std::lock_guard lock(mutex_);
  const auto rows = db_->query("SELECT user_name FROM tokens WHERE hash = ?", {sha256_hex(token)});
  if (rows.empty()) return std::nullopt;
  return text(rows[0], 0);
}

bool MetaStore::revoke_token(const std::string& token) {
  std::lock_guard lock(mutex_);
  return db_->execute("DELETE FROM tokens WHERE hash = ?", {sha256_hex(token)}) > 0;
}

int64_t MetaStore::revoke_tokens_of(const std::string& user) {
  std::lock_guard lock(mutex_);
  return db_->execute("DELETE FROM tokens WHERE user_name = ?", {user});
}

std::optional<std::string> MetaStore::head_of(const std::string& repo) {
  std::lock_guard lock(mutex_);
  const auto rows = db_->query("SELECT head FROM repos WHERE LOWER(id) = LOWER(?)", {repo});
  if (rows.empty()) return std::nullopt;
  return text(rows[0], 0);
}

std::vector<FileEntry> MetaStore::files_of(const std::string& sha) {
  std::vector<FileEntry> files;
  for (const auto& row :
       db_->query("SELECT path, sha256, git_oid, size FROM files WHERE revision = ? ORDER BY path",
                  {sha})) {
    files.push_back({text(row, 0), text(row, 1), text(row, 2), integer(row, 3)});
  }
  return files;
}

std::unordered_set<std::string> MetaStore::referenced_blobs() {
  std::lock_guard lock(mutex_);
  std::unordered_set<std::string> shas;
  for (const auto& row : db_->query("SELECT DISTINCT sha256 FROM files", {}))
    shas.insert(text(row, 0));
  return shas;
}

std::vector<std::string> MetaStore::remove_unreferenced(
    const std::vector<std::string>& candidates,
    const std::function<void(const std::string&)>& remove) {
  std::lock_guard lock(mutex_);
  return in_transaction(*db_, [&] {
    db_->exclude_writers("files");
    std::unordered_set<std::string> referenced;
    for (const auto& row : db_->query("SELECT DISTINCT sha256 FROM files", {}))
      referenced.insert(text(row, 0));
    std::vector<std::string> kept;
    for (const auto& sha : candidates) {
      if (referenced.contains(sha))
        kept.push_back(sha);
      else
        remove(sha);
    }
    return kept;
  });
}

std::optional<Revision> MetaStore::find_revision(const std::string& repo, const std::string& rev) {
  std::lock_guard lock(mutex_);
  const std::string sql = rev == "main"
                              ? fmt::format(
                                    "SELECT {} FROM repos r JOIN revisions v ON v.sha = r.head "
                                    "WHERE LOWER(r.id) = LOWER(?)",
                                    kRevisionColumns)
                              : fmt::format(
                                    "SELECT {} FROM repos r JOIN revisions v ON v.repo = r.id "
                                    "WHERE LOWER(r.id) = LOWER(?) AND v.sha = ?",
                                    kRevisionColumns);
  std::vector<SqlValue> params{repo};
  if (rev != "main") params.push_back(rev);
  const auto rows = db_->query(sql, params);
  if (rows.empty()) return std::nullopt;
  Revision found = read_revision(rows[0]);
  found.files = files_of(found.sha);
  return found;
}

std::optional<RepoSummary> MetaStore::find_repo(const std::string& repo) {
  std::lock_guard lock(mutex_);
  const auto rows =
      db_->query(fmt::format("SELECT r.id, r.owner, r.created, r.updated, {} FROM repos r "
                             "JOIN revisions v ON v.sha = r.head WHERE LOWER(r.id) = LOWER(?)",
                             kRevisionColumns),
                 {repo});
  if (rows.empty()) return std::nullopt;
  return read_summary(rows[0]);
}

std::vector<RepoSummary> MetaStore::search(const SearchFilter& filter) {
  std::string sql = fmt::format(
      "SELECT r.id, r.owner, r.created, r.updated, {} FROM repos r "
      "JOIN revisions v ON v.sha = r.head WHERE 1 = 1",
      kRevisionColumns);
  std::vector<SqlValue> params;
  if (!filter.text.empty()) {
    sql +=
        " AND (LOWER(r.id) LIKE ? ESCAPE '\\' OR LOWER(v.task) LIKE ? ESCAPE '\\'"
        " OR LOWER(v.description) LIKE ? ESCAPE '\\')";
    params.insert(params.end(), 3, contains_pattern(filter.text));
  }
  auto add = [&](bool wanted, const char* clause, std::string value) {
    if (!wanted) return;
    sql += clause;
    params.emplace_back(std::move(value));
  };
  add(!filter.base_model.empty(), " AND LOWER(v.base_model) = LOWER(?)", filter.base_model);
  add(!filter.task.empty(), " AND v.task = ?", filter.task);
  add(!filter.author.empty(), " AND LOWER(r.owner) = LOWER(?)", filter.author);
  add(filter.rank.has_value(), " AND v.lora_rank = ?", std::to_string(filter.rank.value_or(0)));
  std::vector<std::string> tags = filter.tags;
  if (!filter.tag.empty()) tags.push_back(filter.tag);
  for (const auto& tag : tags) {
    add(true, " AND EXISTS (SELECT 1 FROM tags t WHERE t.revision = r.head AND t.tag = ?)", tag);
  }
  sql += " ORDER BY r.updated DESC, r.id LIMIT ? OFFSET ?";
  params.emplace_back(std::to_string(filter.limit));
  params.emplace_back(std::to_string(filter.offset));

  std::lock_guard lock(mutex_);
  std::vector<RepoSummary> found;
  for (const auto& row : db_->query(sql, params)) {
    found.push_back(read_summary(row));
  }
  return found;
}

bool MetaStore::create_repo(const std::string& repo) {
  const std::string owner = repo.substr(0, repo.find('/'));
  const std::string created = std::to_string(now_seconds());
  std::lock_guard lock(mutex_);
  return db_->execute(
             "INSERT INTO repos (id, owner, head, created, updated) VALUES (?, ?, '', ?, ?) "
             "ON CONFLICT DO NOTHING",  // any spelling: repo ids are case-insensitive
             {repo, owner, created, created}) == 1;
}

bool MetaStore::commit(const Revision& rev) {
  const std::string created = std::to_string(rev.created);
  std::lock_guard lock(mutex_);
  return in_transaction(*db_, [&] {
    // A push to "Alice/Mod" updates "alice/mod" when that is how the repo was first spelled.
    const auto stored = db_->query("SELECT id FROM repos WHERE LOWER(id) = LOWER(?)", {rev.repo});
    const std::string repo = stored.empty() ? rev.repo : text(stored[0], 0);
    const std::string owner = repo.substr(0, repo.find('/'));
    // The compare-and-swap on the head comes first: a lost race rolls back before writing.
    const int64_t moved =
        !rev.parent.empty()
            ? db_->execute("UPDATE repos SET head = ?, updated = ? WHERE id = ? AND head = ?",
                           {rev.sha, created, repo, rev.parent})
        : stored.empty()  // a new repo; ON CONFLICT covers a racing push of any spelling
            ? db_->execute(
                  "INSERT INTO repos (id, owner, head, created, updated) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  {repo, owner, rev.sha, created, created})
            : db_->execute(  // a repo created empty (create_repo): its first revision
                  "UPDATE repos SET head = ?, updated = ? WHERE id = ? AND head = ''",
                  {rev.sha, created, repo});
    if (moved != 1) return false;  // nothing was written; the empty transaction commits
    const ModuleMeta& m = rev.meta;
    db_->execute(
        fmt::format("INSERT INTO revisions ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "sha, repo, parent, created, message, base_model, lora_rank, alpha, "
                    "targets, task, description, tags, license"),
        {rev.sha, repo, rev.parent, created, rev.message, m.base_model, std::to_string(m.rank),
         number(m.alpha), nlohmann::json(m.targets).dump(), m.task, m.description,
         nlohmann::json(m.tags).dump(), m.license});
    for (const auto& f : rev.files) {
      db_->execute(
          "INSERT INTO files (revision, path, sha256, git_oid, size) VALUES (?, ?, ?, ?, ?)",
          {rev.sha, f.path, f.sha256, f.git_oid, std::to_string(f.size)});
    }
    for (const auto& tag : m.tags) {
      db_->execute("INSERT INTO tags (revision, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   {rev.sha, tag});
    }
    return true;
  });
}

}  // namespace lorahub::hub
