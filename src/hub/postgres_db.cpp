// SqlDb on PostgreSQL (libpq). '?' placeholders become $1, $2, ...; values go as text and the
// server infers their types from the columns they meet.
#include <libpq-fe.h>

#include <memory>

#include "core/error.h"
#include "hub/sql.h"

namespace lorahub::hub {
namespace {

// Our statements never contain a literal '?', so every '?' is a placeholder.
std::string number_placeholders(std::string_view sql) {
  std::string out;
  int next = 1;
  for (char c : sql) {
    if (c == '?') {
      out += "$" + std::to_string(next++);
    } else {
      out += c;
    }
  }
  return out;
}

// The URL without its password, for messages.
std::string redact(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

class PostgresDb final : public SqlDb {
 public:
  explicit PostgresDb(const std::string& url) : where_(redact(url)) {
    conn_ = PQconnectdb(url.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn_);
      PQfinish(conn_);
      fail("{}: cannot connect to PostgreSQL: {}", where_, trim(message));
    }
    // Notices ("relation already exists, skipping") are not errors; keep stderr clean.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~PostgresDb() override { PQfinish(conn_); }

  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params) override {
    Result result = run(sql, params);
    std::vector<SqlRow> rows(PQntuples(result.get()));
    const int columns = PQnfields(result.get());
    for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
      for (int c = 0; c < columns; ++c) {
        if (PQgetisnull(result.get(), r, c)) {
          rows[r].emplace_back(std::nullopt);
        } else {
          rows[r].emplace_back(
              std::string(PQgetvalue(result.get(), r, c), PQgetlength(result.get(), r, c)));
        }
      }
    }
    return rows;
  }

  int64_t execute(std::string_view sql, const std::vector<SqlValue>& params) override {
    Result result = run(sql, params);
    const char* affected = PQcmdTuples(result.get());
    return *affected ? std::stoll(affected) : 0;
  }

  void begin() override { execute("BEGIN", {}); }
  void commit() override { execute("COMMIT", {}); }
  void rollback() override {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) PQclear(PQexec(conn_, "ROLLBACK"));
  }
  void exclude_writers(std::string_view table) override {
    // EXCLUSIVE conflicts with the ROW EXCLUSIVE lock every INSERT takes, not with SELECTs.
    execute(fmt::format("LOCK TABLE {} IN EXCLUSIVE MODE", table), {});
  }
  std::string describe() const override { return where_; }

 private:
  using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

  Result run(std::string_view sql, const std::vector<SqlValue>& params) {
    if (PQstatus(conn_) != CONNECTION_OK) PQreset(conn_);  // the server restarted
    const std::string text = number_placeholders(sql);
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    Result result(PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0),
                  PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      fail("{}: PostgreSQL error: {} (in: {})", where_, trim(PQerrorMessage(conn_)),
           sql.substr(0, 60));
    }
    return result;
  }

  static std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  std::string where_;
  PGconn* conn_ = nullptr;
};

}  // namespace

std::unique_ptr<SqlDb> open_postgres(const std::string& url) {
  return std::make_unique<PostgresDb>(url);
}

}  // namespace lorahub::hub
