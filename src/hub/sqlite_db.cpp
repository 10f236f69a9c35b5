// SqlDb on SQLite (libsqlite3).
#include <sqlite3.h>

#include <memory>

#include "core/error.h"
#include "hub/sql.h"

namespace lorahub::hub {
namespace {

class SqliteDb final : public SqlDb {
 public:
  explicit SqliteDb(const std::string& path) : path_(path) {
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      fail("{}: cannot open SQLite database: {}", path, message);
    }
    // Other processes (`lorahub hub token create`) may write at the same time: wait, don't fail.
    sqlite3_busy_timeout(db_, 30000);
    query("PRAGMA journal_mode=WAL", {});
    execute("PRAGMA synchronous=FULL", {});
  }
  ~SqliteDb() override { sqlite3_close(db_); }

  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params) override {
    Statement stmt = prepare(sql, params);
    std::vector<SqlRow> rows;
    while (true) {
      const int rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail_with(sql);
      rows.push_back(read_row(stmt.get()));
    }
    return rows;
  }

  int64_t execute(std::string_view sql, const std::vector<SqlValue>& params) override {
    query(sql, params);
    return sqlite3_changes64(db_);
  }

  void begin() override { execute("BEGIN IMMEDIATE", {}); }
  void commit() override { execute("COMMIT", {}); }
  void rollback() override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void exclude_writers(std::string_view) override {}  // BEGIN IMMEDIATE holds the write lock
  std::string describe() const override { return path_; }

 private:
  using Statement = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

  Statement prepare(std::string_view sql, const std::vector<SqlValue>& params) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
        SQLITE_OK) {
      fail_with(sql);
    }
    Statement stmt(raw, sqlite3_finalize);
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      const int rc = params[i]
                         ? sqlite3_bind_text64(stmt.get(), index, params[i]->data(),
                                               params[i]->size(), SQLITE_TRANSIENT, SQLITE_UTF8)
                         : sqlite3_bind_null(stmt.get(), index);
      if (rc != SQLITE_OK) fail_with(sql);
    }
    return stmt;
  }

  static SqlRow read_row(sqlite3_stmt* stmt) {
    SqlRow row;
    const int columns = sqlite3_column_count(stmt);
    for (int c = 0; c < columns; ++c) {
      if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
        row.emplace_back(std::nullopt);
      } else {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        row.emplace_back(std::string(text, sqlite3_column_bytes(stmt, c)));
      }
    }
    return row;
  }

  [[noreturn]] void fail_with(std::string_view sql) {
    fail("{}: SQLite error: {} (in: {})", path_, sqlite3_errmsg(db_), sql.substr(0, 60));
  }

  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<SqlDb> open_sqlite(const std::string& path) {
  return std::make_unique<SqliteDb>(path);
}

}  // namespace lorahub::hub
