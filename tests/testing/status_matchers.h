// GoogleTest helpers for Status / StatusOr (like leveldb's ASSERT_LEVELDB_OK).
#ifndef TESSERA_TESTS_TESTING_STATUS_MATCHERS_H_
#define TESSERA_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"

namespace tessera::testing {

inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
const Status& GetStatus(const StatusOr<T>& s) {
  return s.status();
}

}  // namespace tessera::testing

// Each evaluates `expr` exactly once.
#define EXPECT_OK(expr)                                                  \
  do {                                                                   \
    const ::tessera::Status _tessera_s = ::tessera::testing::GetStatus(expr); \
    EXPECT_TRUE(_tessera_s.ok()) << _tessera_s;                          \
  } while (0)
#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    const ::tessera::Status _tessera_s = ::tessera::testing::GetStatus(expr); \
    ASSERT_TRUE(_tessera_s.ok()) << _tessera_s;                          \
  } while (0)

// `lhs = value of expr` or fails the test.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(TESSERA_STATUS_CONCAT_(_tessera_t_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

#endif  // TESSERA_TESTS_TESTING_STATUS_MATCHERS_H_
