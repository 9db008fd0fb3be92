// A minimal test harness: TEST_CASE registers a function; CHECK records a failure and goes on; REQUIRE stops
// the case. main() (test_main.cpp) runs every case, or those whose name contains argv[1], and ends with the
// line "N passed, N failed".
#pragma once

#include <cmath>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace qvtest {

struct Case {
  const char* name;
  std::function<void()> body;
};

std::vector<Case>& registry();
void record_failure(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

struct RequireFailed {};

}  // namespace qvtest

#define QV_CAT2(a, b) a##b
#define QV_CAT(a, b) QV_CAT2(a, b)
#define TEST_CASE(name)                                                            \
  static void QV_CAT(qv_case_, __LINE__)();                                        \
  static ::qvtest::Registrar QV_CAT(qv_reg_, __LINE__)(name, QV_CAT(qv_case_, __LINE__)); \
  static void QV_CAT(qv_case_, __LINE__)()

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) ::qvtest::record_failure(__FILE__, __LINE__, #cond);      \
  } while (0)

#define CHECK_MSG(cond, msg)                                                              \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::ostringstream qv_os_;                                                          \
      qv_os_ << #cond << " — " << msg;                                                    \
      ::qvtest::record_failure(__FILE__, __LINE__, qv_os_.str());                         \
    }                                                                                     \
  } while (0)

#define REQUIRE(cond)                                                      \
  do {                                                                     \
    if (!(cond)) {                                                         \
      ::qvtest::record_failure(__FILE__, __LINE__, #cond);                 \
      throw ::qvtest::RequireFailed{};                                     \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                        \
  do {                                                                                               \
    const double qv_a_ = (a), qv_b_ = (b);                                                           \
    if (!(std::fabs(qv_a_ - qv_b_) <= (tol))) {                                                      \
      std::ostringstream qv_os_;                                                                     \
      qv_os_ << #a << " = " << qv_a_ << " vs " << #b << " = " << qv_b_ << " (tolerance " << (tol) << ")"; \
      ::qvtest::record_failure(__FILE__, __LINE__, qv_os_.str());                                    \
    }                                                                                                \
  } while (0)

#define CHECK_THROWS_CODE(expr, error_code)                                              \
  do {                                                                                   \
    bool qv_threw_ = false;                                                              \
    try {                                                                                \
      expr;                                                                              \
    } catch (const ::quiver::Error& qv_e_) {                                             \
      qv_threw_ = qv_e_.code() == ::quiver::ErrorCode::error_code;                       \
    }                                                                                    \
    if (!qv_threw_) ::qvtest::record_failure(__FILE__, __LINE__, #expr " did not throw " #error_code); \
  } while (0)
