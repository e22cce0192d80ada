#pragma once

#include <filesystem>
#include <string>

namespace hrm {

// Hex sha256 of a file's bytes, with OpenSSL's libcrypto (EVP). std::runtime_error if it cannot be read.
std::string file_sha256(const std::filesystem::path& path);

}  // namespace hrm
