#!/bin/sh
# Check a bundle's signature (DIR/model.sig, made by `hrm-export sign`) with OpenSSL, jq and coreutils alone:
# the steps a runtime without Python (the C++ one) takes. docs/bundles.md, "Signing and trust", explains each.
#
#   tools/verify_bundle_signature.sh DIR KEY.pub      exit 0: "OK: N files signed by KEY.pub"; 1: one line why
set -eu

fail() { echo "refused: $*" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: $0 BUNDLE_DIR PUBLIC_KEY.pem" >&2; exit 2; }
dir=$1
key=$2
sig=$dir/model.sig
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The envelope: a Sigstore bundle (v0.3, JSON) holding one DSSE envelope over an in-toto statement.
[ -f "$sig" ] || fail "$dir is not signed (no model.sig)"
jq -e '.mediaType == "application/vnd.dev.sigstore.bundle.v0.3+json"
       and .dsseEnvelope.payloadType == "application/vnd.in-toto+json"
       and (.dsseEnvelope.signatures | length) == 1' "$sig" >/dev/null || fail "$sig: not a model-signing bundle"

# 2. The key: its id (sha256 of its PEM text, SubjectPublicKeyInfo) must be the one the signature names.
keyid=$(openssl pkey -pubin -in "$key" | sha256sum | cut -d' ' -f1) || fail "$key: not a PEM public key"
hint=$(jq -r '.verificationMaterial.publicKey.hint // ""' "$sig")
[ -z "$hint" ] || [ "$hint" = "$keyid" ] || fail "$sig: signed with another key (key id $hint, $key is $keyid)"

# 3. The signature: ECDSA (DER) over DSSE's pre-authentication encoding of the payload; the digest follows the
#    curve (P-256 sha256, P-384 sha384, P-521 sha512).
jq -r .dsseEnvelope.payload "$sig" | base64 -d >"$tmp/payload" || fail "$sig: payload is not base64"
jq -r '.dsseEnvelope.signatures[0].sig' "$sig" | base64 -d >"$tmp/sig.der" || fail "$sig: signature is not base64"
type=application/vnd.in-toto+json
printf 'DSSEv1 %d %s %d ' ${#type} "$type" "$(wc -c <"$tmp/payload")" >"$tmp/pae"
cat "$tmp/payload" >>"$tmp/pae"
case $(openssl pkey -pubin -in "$key" -noout -text | grep -o 'prime256v1\|secp384r1\|secp521r1') in
  prime256v1) md=sha256 ;; secp384r1) md=sha384 ;; secp521r1) md=sha512 ;; *) fail "$key: not a P-256/384/521 key" ;;
esac
openssl dgst -"$md" -verify "$key" -signature "$tmp/sig.der" "$tmp/pae" >/dev/null 2>&1 \
  || fail "$sig: the signature does not verify with $key"

# 4. The statement: model-signing v1.0, one sha256 per file, no symlinks, only model.sig left out.
jq -e '._type == "https://in-toto.io/Statement/v1"
       and .predicateType == "https://model_signing/signature/v1.0"
       and .predicate.serialization == {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
                                        "ignore_paths": ["model.sig"]}' "$tmp/payload" >/dev/null \
  || fail "$sig: not a statement this runtime accepts"
root=$(jq -r '.predicate.resources[].digest' "$tmp/payload" | tr -d '\n' | tr a-f A-F | basenc --base16 -d \
       | sha256sum | cut -d' ' -f1)
[ "$root" = "$(jq -r '.subject[0].digest.sha256' "$tmp/payload")" ] || fail "$sig: root digest does not match"

# 5. The files: exactly the signed ones (none missing, none extra, no links), each with its signed sha256.
[ -z "$(find "$dir" -type l)" ] || fail "$dir holds a symlink: a signed bundle holds regular files only"
jq -r '.predicate.resources[] | "\(.digest)  \(.name)"' "$tmp/payload" | LC_ALL=C sort >"$tmp/signed"
(cd "$dir" && find . -type f ! -path ./model.sig -printf '%P\n' | LC_ALL=C sort | while IFS= read -r f; do
  sha256sum "$f"
done) | LC_ALL=C sort >"$tmp/actual"
if ! cmp -s "$tmp/signed" "$tmp/actual"; then
  fail "$dir: files differ from what was signed: $(diff "$tmp/signed" "$tmp/actual" | grep '^[<>]' \
    | sed 's/^< [0-9a-f]*  /signed: /; s/^> [0-9a-f]*  /found: /' | tr '\n' ' ')"
fi
echo "OK: $(wc -l <"$tmp/signed") files signed by $key"
