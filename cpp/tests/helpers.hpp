// Shared by the C++ tests: a temporary directory, file writing, the fixture bundles, and asserting a refusal
// by its type and a fragment of its one-line message.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "hrm/errors.hpp"

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hrm-cpp-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
};

inline void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The fixture directory written by tests/cpp/fixtures.py (HRM_FIXTURES). The pytest suite sets it; a test
// that needs it fails rather than passing without it.
inline fs::path fixtures() {
  const char* dir = std::getenv("HRM_FIXTURES");
  if (!dir || !*dir) throw std::runtime_error("HRM_FIXTURES is not set: run these tests through tests/cpp (pytest)");
  return dir;
}

// A private copy of a fixture bundle, to tamper with.
inline fs::path copy_bundle(const TempDir& tmp, const std::string& name = "bundle") {
  const fs::path dst = tmp / name;
  fs::copy(fixtures() / name, dst, fs::copy_options::recursive);
  return dst;
}

// Runs `stmt`, which must throw `Type` whose message contains `fragment`.
#define EXPECT_REFUSED(stmt, Type, fragment)                                                   \
  do {                                                                                         \
    try {                                                                                      \
      stmt;                                                                                    \
      ADD_FAILURE() << "no " #Type " from " #stmt;                                             \
    } catch (const Type& e) {                                                                  \
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();          \
      EXPECT_FALSE(e.hint().empty()) << "no hint with: " << e.what();                          \
    } catch (const std::exception& e) {                                                        \
      ADD_FAILURE() << #stmt " threw something else than " #Type ": " << e.what();             \
    }                                                                                          \
  } while (0)
