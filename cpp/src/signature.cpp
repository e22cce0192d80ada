#include "signature.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "hrm/errors.hpp"
#include "sha256.hpp"

namespace hrm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr std::uintmax_t MAX_SIGNATURE_BYTES = 64u << 20;  // a real one is a few kB
constexpr const char* BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
constexpr const char* PAYLOAD_TYPE = "application/vnd.in-toto+json";
constexpr const char* STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
constexpr const char* PREDICATE_TYPE = "https://model_signing/signature/v1.0";
const char* KEY_HINT =
    "make a key pair with OpenSSL: openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
    "openssl ec -in key.pem -pubout -out key.pub (docs/bundles.md)";

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256 failed");
  return hex(digest, len);
}

bool is_hex_digest(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string unhex(const std::string& s) {  // s checked by is_hex_digest
  std::string out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < s.size(); i += 2) out += static_cast<char>(nibble(s[i]) << 4 | nibble(s[i + 1]));
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot be read");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The trusted key: a PEM public key (SubjectPublicKeyInfo) on P-256, P-384 or P-521.
Key load_key(const fs::path& path, const EVP_MD** md) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError("--trust " + path.string() + ": no such key file", KEY_HINT);
  const std::string not_key = path.string() + ": not an EC public key in PEM";
  const std::string pub_hint = "pass the public key (openssl ec -in key.pem -pubout -out key.pub), not the private one";
  std::string pem;
  try {
    pem = read_text(path);
  } catch (const std::exception& e) {
    throw UsageError(path.string() + ": " + e.what(), KEY_HINT);
  }
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  Key key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
  if (!key) throw UsageError(not_key, pub_hint);
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) throw UsageError(not_key + " (not an elliptic-curve key)", KEY_HINT);
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &len) != 1) throw UsageError(not_key, KEY_HINT);
  const std::string curve(group, len);
  if (curve == "prime256v1" || curve == "P-256") *md = EVP_sha256();
  else if (curve == "secp384r1" || curve == "P-384") *md = EVP_sha384();
  else if (curve == "secp521r1" || curve == "P-521") *md = EVP_sha512();
  else throw UsageError(path.string() + ": curve " + curve + " is not P-256, P-384 or P-521", KEY_HINT);
  return key;
}

std::string pem_text(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) throw std::runtime_error("cannot write the key as PEM");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

const json& member(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) throw std::invalid_argument(std::string("no '") + key + "'");
  return j.at(key);
}

std::string string_member(const json& j, const char* key) {
  const json& v = member(j, key);
  if (!v.is_string()) throw std::invalid_argument(std::string("'") + key + "' is not a string");
  return v.get<std::string>();
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}
}  // namespace

namespace signature_detail {

std::string base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) throw std::invalid_argument("length is not a multiple of 4");
  const size_t pad = text.size() >= 2 && text.compare(text.size() - 2, 2, "==") == 0 ? 2
                     : !text.empty() && text.back() == '=' ? 1 : 0;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.find_first_not_of(alphabet) < text.size() - pad) throw std::invalid_argument("not the base64 alphabet");
  if (text.empty()) return "";
  if (text.size() > (1u << 30)) throw std::invalid_argument("too long");
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) throw std::invalid_argument("not base64");
  out.resize(out.size() - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

std::string pae(const std::string& payload_type, const std::string& payload) {
  return "DSSEv1 " + std::to_string(payload_type.size()) + " " + payload_type + " " +
         std::to_string(payload.size()) + " " + payload;
}

std::string key_id(const fs::path& public_key) {
  const EVP_MD* md = nullptr;
  return sha256_hex(pem_text(load_key(public_key, &md).get()));
}

std::map<std::string, std::string> bundle_files(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    const fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    const std::string name = p.lexically_relative(dir).generic_string();
    if (fs::is_symlink(st))
      throw SignatureError(dir.string() + ": " + name + " is a symlink: a signed bundle holds regular files only",
                           "replace the link by the file it points to, then sign again: hrm-export sign " +
                               dir.string() + " --key KEY.pem");
    if (fs::is_directory(st)) continue;
    if (!fs::is_regular_file(st))
      throw SignatureError(dir.string() + ": " + name + " is not a regular file: a signed bundle holds regular files only",
                           "remove it, then sign again: hrm-export sign " + dir.string() + " --key KEY.pem");
    if (name == SIGNATURE_NAME) continue;
    try {
      out[name] = file_sha256(p);
    } catch (const std::exception& e) {
      throw SignatureError(dir.string() + ": " + name + " cannot be read (" + e.what() + ")",
                           "check the bundle's permissions");
    }
  }
  if (ec) throw SignatureError(dir.string() + ": cannot list the bundle (" + ec.message() + ")",
                               "check the bundle's permissions");
  return out;
}

}  // namespace signature_detail

void verify_bundle_signature(const fs::path& dir, const fs::path& public_key) {
  using namespace signature_detail;
  const fs::path sig = dir / SIGNATURE_NAME;
  const std::string resign = "sign the bundle again: hrm-export sign " + dir.string() + " --key KEY.pem";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(sig, ec)))
    throw SignatureError(dir.string() + ": not signed (no " + SIGNATURE_NAME + "), and a signature is required (trust " +
                             public_key.string() + ")",
                         "use a signed bundle, or check the bundle, then sign it: hrm-export sign " + dir.string() +
                             " --key KEY.pem");
  const EVP_MD* md = nullptr;
  Key key = load_key(public_key, &md);

  // 1. The envelope: a Sigstore bundle v0.3 holding one DSSE envelope over an in-toto statement.
  std::string payload, signature, hint;
  try {
    if (!fs::is_regular_file(sig, ec) || fs::file_size(sig, ec) > MAX_SIGNATURE_BYTES)
      throw std::invalid_argument("not a regular file of at most 64 MiB");
    const json bundle = json::parse(read_text(sig));
    if (string_member(bundle, "mediaType") != BUNDLE_MEDIA_TYPE)
      throw std::invalid_argument("mediaType is not " + std::string(BUNDLE_MEDIA_TYPE));
    const json& envelope = member(bundle, "dsseEnvelope");
    if (string_member(envelope, "payloadType") != PAYLOAD_TYPE)
      throw std::invalid_argument("payloadType is not " + std::string(PAYLOAD_TYPE));
    const json& sigs = member(envelope, "signatures");
    if (!sigs.is_array() || sigs.size() != 1) throw std::invalid_argument("not exactly one signature");
    try {
      payload = base64_decode(string_member(envelope, "payload"));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("payload: ") + e.what());
    }
    try {
      signature = base64_decode(string_member(sigs[0], "sig"));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("sig: ") + e.what());
    }
    if (bundle.contains("verificationMaterial")) {
      const json& material = bundle.at("verificationMaterial");
      if (material.is_object() && material.contains("publicKey") && material.at("publicKey").is_object() &&
          material.at("publicKey").contains("hint"))
        hint = string_member(material.at("publicKey"), "hint");
    }
  } catch (const std::exception& e) {  // JSON errors, our invalid_argument
    throw SignatureError(sig.string() + ": not a readable model-signing signature (" + e.what() + ")", resign);
  }

  // 2. The key: its id must be the one the signature names (when it names one).
  const std::string wrong_key_hint = "pass the public key of the key that signed it, or re-sign the bundle";
  const std::string id = sha256_hex(pem_text(key.get()));
  if (!hint.empty() && hint != id)
    throw SignatureError(sig.string() + ": not signed with the key " + public_key.string() + " (the signature names key id " +
                             hint.substr(0, 12) + "\u2026, " + public_key.filename().string() + " is " +
                             id.substr(0, 12) + "\u2026)",
                         wrong_key_hint);

  // 3. The signature: ECDSA (DER) over the PAE of the payload, with the curve's digest.
  const std::string bytes = pae(PAYLOAD_TYPE, payload);
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  const bool good = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) == 1 &&
                    EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                     signature.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                                     bytes.size()) == 1;
  if (!good)
    throw SignatureError(sig.string() + ": not signed with the key " + public_key.string() +
                             " (or the signature was altered)",
                         wrong_key_hint);

  // 4. The statement (authentic now): model-signing v1.0 over files, and its root digest.
  std::map<std::string, std::string> signed_files;
  try {
    const json statement = json::parse(payload);
    const json serialization = {{"method", "files"}, {"hash_type", "sha256"}, {"allow_symlinks", false},
                                {"ignore_paths", {SIGNATURE_NAME}}};
    if (string_member(statement, "_type") != STATEMENT_TYPE) throw std::invalid_argument("_type is not " + std::string(STATEMENT_TYPE));
    if (string_member(statement, "predicateType") != PREDICATE_TYPE)
      throw std::invalid_argument("predicateType is not " + std::string(PREDICATE_TYPE));
    const json& predicate = member(statement, "predicate");
    if (member(predicate, "serialization") != serialization)
      throw std::invalid_argument("serialization is not " + serialization.dump());
    const json& resources = member(predicate, "resources");
    if (!resources.is_array()) throw std::invalid_argument("resources is not a list");
    std::string concatenated;
    for (const json& r : resources) {
      const std::string name = string_member(r, "name"), digest = string_member(r, "digest");
      if (r.contains("algorithm") && r.at("algorithm") != "sha256")
        throw std::invalid_argument("resource '" + name + "' is not hashed with sha256");
      if (!is_hex_digest(digest)) throw std::invalid_argument("resource '" + name + "' has no hex sha256 digest");
      if (!signed_files.emplace(name, digest).second) throw std::invalid_argument("resource '" + name + "' is listed twice");
      concatenated += unhex(digest);
    }
    const json& subject = member(statement, "subject");
    if (!subject.is_array() || subject.empty()) throw std::invalid_argument("no subject");
    const std::string root = string_member(member(subject[0], "digest"), "sha256");
    if (root != sha256_hex(concatenated))
      throw SignatureError(sig.string() + ": root digest does not match the signed files' digests", resign);
  } catch (const SignatureError&) {
    throw;
  } catch (const std::exception& e) {
    throw SignatureError(sig.string() + ": not a statement this runtime accepts (" + e.what() + ")", resign);
  }

  // 5. The files: exactly the signed ones, no links, each with its signed sha256.
  const std::map<std::string, std::string> present = bundle_files(dir);
  std::vector<std::string> changed, extra, missing;
  for (const auto& [name, digest] : present) {
    const auto it = signed_files.find(name);
    if (it == signed_files.end()) extra.push_back(name);
    else if (it->second != digest) changed.push_back(name);
  }
  for (const auto& item : signed_files)
    if (!present.count(item.first)) missing.push_back(item.first);
  std::string diff;
  for (const auto& [kind, names] : {std::pair<const char*, const std::vector<std::string>&>{"changed", changed},
                                    {"not signed", extra}, {"missing", missing}})
    if (!names.empty()) diff += (diff.empty() ? "" : "; ") + std::string(kind) + ": " + join(names);
  if (!diff.empty())
    throw SignatureError(dir.string() + ": files differ from what was signed: " + diff,
                         "the bundle changed after it was signed: restore the signed copy, or check it and sign "
                         "again: hrm-export sign " + dir.string() + " --key KEY.pem");
}

}  // namespace hrm
