// Bundle signatures (signature.hpp): base64 and PAE, and every refusal of verify_bundle_signature on a small
// directory signed here with OpenSSL the way `hrm-export sign` signs (a Sigstore bundle v0.3 holding a DSSE
// envelope over a model-signing statement). tests/cpp/test_cpp_signing.py checks the real `hrm-export sign`.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "manifest.hpp"
#include "sha256.hpp"
#include "signature.hpp"

namespace {

using nlohmann::json;
namespace sd = hrm::signature_detail;

std::string b64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string sha256_raw(const std::string& bytes) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(d), n);
}

std::string hex(const std::string& raw) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) (out += digits[c >> 4]) += digits[c & 15];
  return out;
}

// An EC key pair as PEM files: pub (SubjectPublicKeyInfo) and pem (PKCS#8 private key).
struct KeyPair {
  std::shared_ptr<EVP_PKEY> key;
  fs::path pub, pem;
  const EVP_MD* md;
  KeyPair(const fs::path& dir, const std::string& name, const char* curve = "P-256", const EVP_MD* digest = EVP_sha256())
      : key(EVP_EC_gen(curve), &EVP_PKEY_free), pub(dir / (name + ".pub")), pem(dir / (name + ".pem")), md(digest) {
    fs::create_directories(dir);
    BIO* b = BIO_new_file(pub.c_str(), "w");
    PEM_write_bio_PUBKEY(b, key.get());
    BIO_free(b);
    b = BIO_new_file(pem.c_str(), "w");
    PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    BIO_free(b);
  }
  std::string sign(const std::string& data) const {
    std::shared_ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    size_t n = 0;
    EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.get());
    EVP_DigestSign(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(data.data()), data.size());
    std::string sig(n, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                   reinterpret_cast<const unsigned char*>(data.data()), data.size());
    sig.resize(n);
    return sig;
  }
};

// What `hrm-export sign DIR` writes, with a chance to change the statement before signing and the model.sig
// JSON after.
void sign_dir(const fs::path& dir, const KeyPair& k, const std::function<void(json&)>& statement_edit = nullptr,
              const std::function<void(json&)>& bundle_edit = nullptr) {
  const std::map<std::string, std::string> files = sd::bundle_files(dir);
  json resources = json::array();
  std::string raw;
  for (const auto& [name, digest] : files) {
    resources.push_back({{"name", name}, {"algorithm", "sha256"}, {"digest", digest}});
    for (size_t i = 0; i < digest.size(); i += 2) raw += static_cast<char>(std::stoi(digest.substr(i, 2), nullptr, 16));
  }
  json statement = {
      {"_type", "https://in-toto.io/Statement/v1"},
      {"subject", {{{"name", dir.filename().string()}, {"digest", {{"sha256", hex(sha256_raw(raw))}}}}}},
      {"predicateType", "https://model_signing/signature/v1.0"},
      {"predicate",
       {{"serialization", {{"method", "files"}, {"hash_type", "sha256"}, {"allow_symlinks", false},
                           {"ignore_paths", {"model.sig"}}}},
        {"resources", resources}}}};
  if (statement_edit) statement_edit(statement);
  const std::string payload = statement.dump(2);
  json bundle = {
      {"mediaType", "application/vnd.dev.sigstore.bundle.v0.3+json"},
      {"verificationMaterial", {{"publicKey", {{"hint", sd::key_id(k.pub)}}}, {"tlogEntries", json::array()}}},
      {"dsseEnvelope",
       {{"payload", b64(payload)},
        {"payloadType", "application/vnd.in-toto+json"},
        {"signatures", {{{"sig", b64(k.sign(sd::pae("application/vnd.in-toto+json", payload)))}, {"keyid", ""}}}}}}};
  if (bundle_edit) bundle_edit(bundle);
  write_file(dir / "model.sig", bundle.dump(2));
}

struct Signed : ::testing::Test {
  TempDir tmp;
  fs::path dir = tmp / "bundle";
  KeyPair key{tmp / "keys", "key"}, other{tmp / "keys", "other"};
  void SetUp() override {
    write_file(dir / "manifest.json", "{}");
    write_file(dir / "a.onnx", "abc");
    write_file(dir / "sub" / "b.bin", "b");
    write_file(dir / ".hidden", "signed too");
  }
};

#define REFUSED(stmt, fragment) EXPECT_REFUSED(stmt, hrm::SignatureError, fragment)

TEST(Signature, Base64AsPythonWritesIt) {
  EXPECT_EQ(sd::base64_decode(""), "");
  EXPECT_EQ(sd::base64_decode("YQ=="), "a");
  EXPECT_EQ(sd::base64_decode("YWI="), "ab");
  EXPECT_EQ(sd::base64_decode("YWJj"), "abc");
  EXPECT_EQ(sd::base64_decode(b64(std::string("\0\xff\x10", 3))), std::string("\0\xff\x10", 3));
  for (const char* bad : {"YQ=", "Y===", "YQ=a", "=YQ=", "YW J", "YWJ\n", "YW-_"})
    EXPECT_THROW(sd::base64_decode(bad), std::invalid_argument) << bad;
}

TEST(Signature, PreAuthenticationEncoding) {
  EXPECT_EQ(sd::pae("application/vnd.in-toto+json", "{}"), "DSSEv1 28 application/vnd.in-toto+json 2 {}");
}

TEST_F(Signed, VerifiesWithItsKeyOnEveryCurve) {
  sign_dir(dir, key);
  hrm::verify_bundle_signature(dir, key.pub);
  KeyPair p384(tmp / "keys", "p384", "P-384", EVP_sha384()), p521(tmp / "keys", "p521", "P-521", EVP_sha512());
  for (const KeyPair* k : {&p384, &p521}) {
    sign_dir(dir, *k);
    hrm::verify_bundle_signature(dir, k->pub);
    REFUSED(hrm::verify_bundle_signature(dir, key.pub), "not signed with the key");
  }
}

TEST_F(Signed, RefusesAnotherKey) {
  sign_dir(dir, key);
  REFUSED(hrm::verify_bundle_signature(dir, other.pub), "model.sig: not signed with the key " + other.pub.string() +
                                                            " (the signature names key id");
  sign_dir(dir, key, nullptr, [](json& b) { b["verificationMaterial"]["publicKey"]["hint"] = ""; });
  hrm::verify_bundle_signature(dir, key.pub);  // no key id: the signature decides
  REFUSED(hrm::verify_bundle_signature(dir, other.pub), "(or the signature was altered)");
}

TEST_F(Signed, RefusesAnAlteredSignatureOrPayload) {
  sign_dir(dir, key, nullptr, [](json& b) {
    std::string sig = sd::base64_decode(b["dsseEnvelope"]["signatures"][0]["sig"]);
    sig.back() ^= 1;
    b["dsseEnvelope"]["signatures"][0]["sig"] = b64(sig);
  });
  REFUSED(hrm::verify_bundle_signature(dir, key.pub), "(or the signature was altered)");
  sign_dir(dir, key, nullptr, [](json& b) {
    std::string payload = sd::base64_decode(b["dsseEnvelope"]["payload"]);
    payload += " ";
    b["dsseEnvelope"]["payload"] = b64(payload);
  });
  REFUSED(hrm::verify_bundle_signature(dir, key.pub), "(or the signature was altered)");
}

TEST_F(Signed, RefusesWhatIsNotAModelSigningBundle) {
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& b) { b["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.2+json"; }, "mediaType is not"},
      {[](json& b) { b["dsseEnvelope"]["payloadType"] = "text/plain"; }, "payloadType is not"},
      {[](json& b) { b["dsseEnvelope"]["signatures"].push_back(b["dsseEnvelope"]["signatures"][0]); },
       "not exactly one signature"},
      {[](json& b) { b["dsseEnvelope"]["payload"] = "e30"; }, "payload: length is not a multiple of 4"},
      {[](json& b) { b["dsseEnvelope"]["signatures"][0]["sig"] = "MEQ*"; }, "sig: not the base64 alphabet"},
      {[](json& b) { b.erase("dsseEnvelope"); }, "no 'dsseEnvelope'"},
  };
  for (const auto& [edit, fragment] : cases) {
    sign_dir(dir, key, nullptr, edit);
    REFUSED(hrm::verify_bundle_signature(dir, key.pub), "model.sig: not a readable model-signing signature");
    REFUSED(hrm::verify_bundle_signature(dir, key.pub), fragment);
  }
  write_file(dir / "model.sig", "{not json");
  REFUSED(hrm::verify_bundle_signature(dir, key.pub), "not a readable model-signing signature");
}

TEST_F(Signed, RefusesAStatementItDoesNotAccept) {
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& s) { s["_type"] = "https://in-toto.io/Statement/v0.1"; }, "_type is not"},
      {[](json& s) { s["predicateType"] = "https://model_signing/Digests/v0.1"; }, "predicateType is not"},
      {[](json& s) { s["predicate"]["serialization"]["allow_symlinks"] = true; }, "serialization is not"},
      {[](json& s) { s["predicate"]["serialization"]["ignore_paths"] = json::array(); }, "serialization is not"},
      {[](json& s) { s["predicate"]["serialization"]["hash_type"] = "blake2"; }, "serialization is not"},
      {[](json& s) { s["predicate"]["resources"][0]["digest"] = "ABC"; }, "has no hex sha256 digest"},
      {[](json& s) { s["predicate"]["resources"].push_back(s["predicate"]["resources"][0]); }, "is listed twice"},
  };
  for (const auto& [edit, fragment] : cases) {
    sign_dir(dir, key, edit);  // signed: the envelope verifies, the statement is what is refused
    REFUSED(hrm::verify_bundle_signature(dir, key.pub), "model.sig: not a statement this runtime accepts");
    REFUSED(hrm::verify_bundle_signature(dir, key.pub), fragment);
  }
  sign_dir(dir, key, [](json& s) { s["subject"][0]["digest"]["sha256"] = std::string(64, '0'); });
  REFUSED(hrm::verify_bundle_signature(dir, key.pub), "model.sig: root digest does not match");
}

TEST_F(Signed, RefusesChangedExtraMissingFilesAndLinks) {
  sign_dir(dir, key);
  write_file(dir / "a.onnx", "abd");
  write_file(dir / "sub" / "new.txt", "x");
  fs::remove(dir / ".hidden");
  REFUSED(hrm::verify_bundle_signature(dir, key.pub),
          dir.string() + ": files differ from what was signed: changed: a.onnx; not signed: sub/new.txt; missing: .hidden");
  sign_dir(dir, key);
  fs::create_symlink("a.onnx", dir / "link.onnx");
  REFUSED(hrm::verify_bundle_signature(dir, key.pub), "link.onnx is a symlink");
}

TEST_F(Signed, RefusesAnUnsignedBundleAndKeysThatAreNotPublicKeys) {
  REFUSED(hrm::verify_bundle_signature(dir, key.pub), "not signed (no model.sig), and a signature is required");
  sign_dir(dir, key);
  EXPECT_REFUSED(hrm::verify_bundle_signature(dir, tmp / "nope.pub"), hrm::UsageError, "nope.pub: no such key file");
  EXPECT_REFUSED(hrm::verify_bundle_signature(dir, key.pem), hrm::UsageError, "not an EC public key in PEM");
}

TEST_F(Signed, ManifestLoadChecksTheSignatureFirstWithATrustedKeyOnly) {
  sign_dir(dir, key);  // manifest.json is "{}": corrupt, but the signature is checked before it is read
  REFUSED(hrm::Manifest::load(dir, other.pub.string()), "not signed with the key");
  EXPECT_REFUSED(hrm::Manifest::load(dir, key.pub.string()), hrm::ManifestError, "corrupt manifest");
  fs::remove(dir / "model.sig");
  REFUSED(hrm::Manifest::load(dir, key.pub.string()), "not signed (no model.sig)");
  write_file(dir / "model.sig", "{}");  // without a key nothing is checked: the manifest is what is refused
  EXPECT_REFUSED(hrm::Manifest::load(dir), hrm::ManifestError, "corrupt manifest");
}

}  // namespace
