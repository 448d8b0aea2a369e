// EXPECT_FDPP_ERROR(statement, code, {"substring", ...}): the statement throws fdpp::Error with
// that code and a message containing every substring.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fdpp/status.h"

#define EXPECT_FDPP_ERROR(statement, expected_code, ...)                                        \
  do {                                                                                         \
    const std::vector<std::string> fdpp_parts_ = __VA_ARGS__;                                  \
    try {                                                                                      \
      statement;                                                                               \
      ADD_FAILURE() << "expected fdpp::Error from: " #statement;                              \
    } catch (const fdpp::Error& fdpp_e_) {                                                     \
      EXPECT_EQ(fdpp_e_.code(), expected_code)                                                 \
          << "code " << fdpp::error_code_name(fdpp_e_.code()) << ", message: " << fdpp_e_.what(); \
      for (const std::string& fdpp_p_ : fdpp_parts_) {                                         \
        EXPECT_NE(std::string(fdpp_e_.what()).find(fdpp_p_), std::string::npos)                \
            << "message lacks \"" << fdpp_p_ << "\": " << fdpp_e_.what();                     \
      }                                                                                        \
    }                                                                                          \
  } while (0)
