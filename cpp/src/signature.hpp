// Bundle signatures (hrm_export/core/signing.py): DIR/model.sig, written by `hrm-export sign`, checked with a
// trusted public key before anything else in the bundle is read. The steps are those of
// tools/verify_bundle_signature.sh and docs/bundles.md ("Verifying without Python"), with OpenSSL's libcrypto:
//
//   1. model.sig is a Sigstore bundle v0.3 (JSON) holding one DSSE envelope over an in-toto statement;
//   2. the trusted key (PEM SubjectPublicKeyInfo, EC P-256/384/521) has the key id the signature names, if any;
//   3. the ECDSA signature verifies over DSSE's pre-authentication encoding (PAE) of the payload, with the
//      curve's digest (SHA-256/384/512);
//   4. the statement (read only now: it is authentic) is model-signing v1.0, files, sha256, no symlinks, only
//      model.sig left out, and its root digest is the sha256 of the listed digests;
//   5. the bundle holds exactly the listed files (no symlink, none missing, none extra), each with its sha256.
//
// Every refusal is a SignatureError with one line naming the thing and a hint; a key file that is missing or
// not an EC public key is a UsageError (Python: UserError).
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace hrm {

constexpr const char* SIGNATURE_NAME = "model.sig";

// Raise SignatureError unless DIR/model.sig was made with the key in `public_key` (a PEM file) over exactly the
// files DIR holds now (same names, same sha256).
void verify_bundle_signature(const std::filesystem::path& dir, const std::filesystem::path& public_key);

namespace signature_detail {  // the parts, for the unit tests
// Standard base64 (padded, no line breaks) → bytes; std::invalid_argument when it is not that.
std::string base64_decode(const std::string& text);
// "DSSEv1 <len(type)> <type> <len(payload)> <payload>"
std::string pae(const std::string& payload_type, const std::string& payload);
// The key id: lowercase hex sha256 of the key's PEM text (SubjectPublicKeyInfo), as `openssl pkey -pubin` prints it.
std::string key_id(const std::filesystem::path& public_key);
// name → sha256 of each regular file under DIR but model.sig ('/'-separated names); SignatureError on a symlink.
std::map<std::string, std::string> bundle_files(const std::filesystem::path& dir);
}  // namespace signature_detail

}  // namespace hrm
