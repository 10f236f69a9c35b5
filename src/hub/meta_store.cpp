#include "hub/meta_store.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "hub/hash.h"

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

const std::string& text(const SqlRow& row, size_t i) {
  static const std::string empty;
  return row.at(i) ? *row[i] : empty;
}

std::vector<std::string> json_strings(const std::string& text) {
  return nlohmann::json::parse(text).get<std::vector<std::string>>();
}

Revision read_revision(const SqlRow& row, size_t first = 0) {
  Revision rev;
  rev.sha = text(row, first + 0);
  rev.repo = text(row, first + 1);
  rev.parent = text(row, first + 2);
  rev.created = std::stoll(text(row, first + 3));
  rev.message = text(row, first + 4);
  rev.meta.base_model = text(row, first + 5);
  rev.meta.rank = std::stoll(text(row, first + 6));
  rev.meta.alpha = std::stod(text(row, first + 7));
  rev.meta.targets = json_strings(text(row, first + 8));
  rev.meta.task = text(row, first + 9);
  rev.meta.description = text(row, first + 10);
  rev.meta.tags = json_strings(text(row, first + 11));
  rev.meta.license = text(row, first + 12);
  return rev;
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
  std::lock_guard lock(mutex_);
  in_transaction(*db_, [&] {
    const std::string created = std::to_string(now_seconds());
    db_->execute("INSERT INTO users (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                 {user, created});
    db_->execute("INSERT INTO tokens (hash, user_name, created) VALUES (?, ?, ?)",
                 {sha256_hex(token), user, created});
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
  const auto rows = db_->query("SELECT head FROM repos WHERE id = ?", {repo});
  if (rows.empty()) return std::nullopt;
  return text(rows[0], 0);
}

std::vector<FileEntry> MetaStore::files_of(const std::string& sha) {
  std::vector<FileEntry> files;
  for (const auto& row :
       db_->query("SELECT path, sha256, git_oid, size FROM files WHERE revision = ? ORDER BY path",
                  {sha})) {
    files.push_back({text(row, 0), text(row, 1), text(row, 2), std::stoll(text(row, 3))});
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

std::optional<Revision> MetaStore::find_revision(const std::string& repo, const std::string& rev) {
  std::lock_guard lock(mutex_);
  const std::string sql =
      rev == "main" ? fmt::format(
                          "SELECT {} FROM repos r JOIN revisions v ON v.sha = r.head "
                          "WHERE r.id = ?",
                          kRevisionColumns)
                    : fmt::format("SELECT {} FROM revisions v WHERE v.repo = ? AND v.sha = ?",
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
                             "JOIN revisions v ON v.sha = r.head WHERE r.id = ?",
                             kRevisionColumns),
                 {repo});
  if (rows.empty()) return std::nullopt;
  const auto& row = rows[0];
  return RepoSummary{text(row, 0), text(row, 1), std::stoll(text(row, 2)), std::stoll(text(row, 3)),
                     read_revision(row, 4)};
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
  add(!filter.author.empty(), " AND r.owner = ?", filter.author);
  add(filter.rank.has_value(), " AND v.lora_rank = ?", std::to_string(filter.rank.value_or(0)));
  add(!filter.tag.empty(),
      " AND EXISTS (SELECT 1 FROM tags t WHERE t.revision = r.head AND t.tag = ?)", filter.tag);
  sql += " ORDER BY r.updated DESC, r.id LIMIT ? OFFSET ?";
  params.emplace_back(std::to_string(filter.limit));
  params.emplace_back(std::to_string(filter.offset));

  std::lock_guard lock(mutex_);
  std::vector<RepoSummary> found;
  for (const auto& row : db_->query(sql, params)) {
    found.push_back({text(row, 0), text(row, 1), std::stoll(text(row, 2)), std::stoll(text(row, 3)),
                     read_revision(row, 4)});
  }
  return found;
}

bool MetaStore::commit(const Revision& rev) {
  const std::string owner = rev.repo.substr(0, rev.repo.find('/'));
  const std::string created = std::to_string(rev.created);
  std::lock_guard lock(mutex_);
  return in_transaction(*db_, [&] {
    // The compare-and-swap on the head comes first: a lost race rolls back before writing.
    const int64_t moved =
        rev.parent.empty()
            ? db_->execute(
                  "INSERT INTO repos (id, owner, head, created, updated) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                  {rev.repo, owner, rev.sha, created, created})
            : db_->execute("UPDATE repos SET head = ?, updated = ? WHERE id = ? AND head = ?",
                           {rev.sha, created, rev.repo, rev.parent});
    if (moved != 1) return false;  // nothing was written; the empty transaction commits
    const ModuleMeta& m = rev.meta;
    db_->execute(
        fmt::format("INSERT INTO revisions ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "sha, repo, parent, created, message, base_model, lora_rank, alpha, "
                    "targets, task, description, tags, license"),
        {rev.sha, rev.repo, rev.parent, created, rev.message, m.base_model, std::to_string(m.rank),
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
