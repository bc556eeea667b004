#!/bin/sh
# ensure-signing-policy.sh: in-image container trust policy for this image's own repositories.
#
# Usage: STABLE_REPO=<registry/repo> CANDIDATE_REPO=<registry/repo> ensure-signing-policy.sh <cosign.pub>
#   e.g. STABLE_REPO=ghcr.io/owner/kinoite-zfs CANDIDATE_REPO=ghcr.io/owner/kinoite-zfs-candidate
#
# Makes `rpm-ostree rebase` / `bootc switch` on an installed system require a cosign signature made
# with the pipeline's key for both repositories (reference S8 "in-image trust-policy normalisation";
# the full repositories come from build args instead of being derived from an existing policy):
#   /etc/pki/containers/<basename>.pub               the public key, once per repository
#   /etc/containers/policy.json                     transports.docker[<repo>] = sigstoreSigned + matchRepository
#   /etc/containers/registries.d/<basename>.yaml     use-sigstore-attachments: true for <repo>
# Other registries.d files that also configure either repository are removed: duplicate namespace
# definitions are a hard parse error in containers/image, which would break every pull on the host.
set -eu

log() { printf 'ensure-signing-policy: %s\n' "$*"; }
fail() { printf 'ensure-signing-policy: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$#" -eq 1 ] || fail "usage: ensure-signing-policy.sh <cosign.pub>  (with STABLE_REPO and CANDIDATE_REPO set)"
KEY="$1"
command -v jq >/dev/null 2>&1 || fail "Required command is not available: jq"

[ -f "$KEY" ] || fail "Public key $KEY not found; put your cosign public key at recipes/os/cosign.pub."
if ! grep -q -- '-----BEGIN PUBLIC KEY-----' "$KEY"; then
  fail "$KEY is not a PEM public key: replace recipes/os/cosign.pub with your public key (cosign generate-key-pair writes cosign.pub)."
fi

check_repo() {
  name="$1"; value="$2"
  [ -n "$value" ] || fail "$name is not set; pass --build-arg $name=<registry/repo> (e.g. ghcr.io/owner/kinoite-zfs)."
  case "$value" in
    *[!a-z0-9._/:-]*) fail "$name '$value' must be a lower-case registry/repository without tag or digest." ;;
    */*) ;;
    *) fail "$name '$value' must include the registry, like ghcr.io/owner/kinoite-zfs." ;;
  esac
  case "${value##*/}" in
    *:*|'') fail "$name '$value' must not carry a tag or end in '/'." ;;
  esac
}
STABLE_REPO="${STABLE_REPO:-}"
CANDIDATE_REPO="${CANDIDATE_REPO:-}"
check_repo STABLE_REPO "$STABLE_REPO"
check_repo CANDIDATE_REPO "$CANDIDATE_REPO"
[ "${STABLE_REPO##*/}" != "${CANDIDATE_REPO##*/}" ] ||
  fail "STABLE_REPO and CANDIDATE_REPO must have different last path parts (they name the key and registries.d files)."

PKI=/etc/pki/containers
POLICY=/etc/containers/policy.json
REGD=/etc/containers/registries.d
mkdir -p "$PKI" "$REGD"

if [ ! -f "$POLICY" ]; then
  printf '%s\n' '{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{}}}' > "$POLICY"
  log "created default $POLICY"
fi
jq -e . "$POLICY" >/dev/null 2>&1 || fail "$POLICY is not valid JSON; fix or remove it in the base image."

for repo in "$STABLE_REPO" "$CANDIDATE_REPO"; do
  base="${repo##*/}"
  pub="$PKI/$base.pub"
  yaml="$REGD/$base.yaml"

  # Remove other registries.d files that define this repository (the canonical file is rewritten below).
  for f in "$REGD"/*.yaml "$REGD"/*.yml; do
    [ -f "$f" ] || continue
    [ "$f" = "$REGD/${STABLE_REPO##*/}.yaml" ] && continue
    [ "$f" = "$REGD/${CANDIDATE_REPO##*/}.yaml" ] && continue
    if grep -Fq -- "$repo:" "$f"; then
      rm -f "$f"
      log "removed duplicate $f (it also configured $repo)"
    fi
  done

  cp "$KEY" "$pub"

  tmp="$POLICY.tmp.$$"
  jq --arg repo "$repo" --arg key "$pub" \
    '.transports.docker[$repo] = [{"type": "sigstoreSigned", "keyPath": $key, "signedIdentity": {"type": "matchRepository"}}]' \
    "$POLICY" > "$tmp"
  mv "$tmp" "$POLICY"

  cat > "$yaml" <<EOF
docker:
  $repo:
    use-sigstore-attachments: true
EOF
  chmod 0644 "$pub" "$yaml"
  log "trust $repo: sigstoreSigned with $pub; $yaml"
done
chmod 0644 "$POLICY"
log "done"
