// The little SQL the hub needs, behind one interface so that the metadata store is written once
// and runs on SQLite (embedded default) or PostgreSQL (several servers sharing one store).
// Statements use '?' placeholders; every value travels as text (NULL as nullopt) and the
// database converts it by the column's type.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace lorahub::hub {

using SqlValue = std::optional<std::string>;
using SqlRow = std::vector<SqlValue>;

// Not thread-safe: the caller serializes access (MetaStore holds a mutex).
class SqlDb {
 public:
  virtual ~SqlDb() = default;
  // Runs one statement; returns its rows (empty for statements without results).
  virtual std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params) = 0;
  // Runs one statement; returns the number of rows it inserted, updated or deleted.
  virtual int64_t execute(std::string_view sql, const std::vector<SqlValue>& params) = 0;
  // A write transaction. SQLite takes its write lock at once (BEGIN IMMEDIATE) so two writers
  // never deadlock upgrading read locks.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;
  // Inside a transaction: blocks writers of `table` (readers go on) until it ends. SQLite's
  // BEGIN IMMEDIATE already excludes every other writer; PostgreSQL takes a table lock.
  virtual void exclude_writers(std::string_view table) = 0;
  virtual std::string describe() const = 0;  // for messages: the file or the server
};

// SQLite in WAL mode with synchronous=FULL: a committed transaction survives kill -9 and power
// loss, and readers never block the writer.
std::unique_ptr<SqlDb> open_sqlite(const std::string& path);

// PostgreSQL through libpq, from a URL such as postgresql://user@127.0.0.1:5432/lorahub.
std::unique_ptr<SqlDb> open_postgres(const std::string& url);

// Runs `body` inside begin()/commit(), rolling back when it throws.
template <typename Body>
auto in_transaction(SqlDb& db, Body&& body) {
  db.begin();
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      db.commit();
    } else {
      auto result = body();
      db.commit();
      return result;
    }
  } catch (...) {
    db.rollback();
    throw;
  }
}

}  // namespace lorahub::hub
