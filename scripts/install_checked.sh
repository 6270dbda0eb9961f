#!/usr/bin/env bash
# Download a release binary, check its sha256, install it; nothing is installed when the sum differs.
#   scripts/install_checked.sh URL SHA256 DEST [MEMBER]
# MEMBER: the file to take out of a .tar.gz download (e.g. trivy); without it the download is the binary.
set -euo pipefail
if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
  echo "usage: $0 URL SHA256 DEST [MEMBER]" >&2
  exit 2
fi
url=$1 sha256=$2 dest=$3 member=${4:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 --max-time 600 -o "$work/download" "$url"
if ! echo "$sha256  $work/download" | sha256sum --check --status; then
  echo "install_checked: $url has sha256 $(sha256sum "$work/download" | cut -d' ' -f1), expected $sha256" >&2
  exit 1
fi
source=$work/download
if [ -n "$member" ]; then
  tar -xzf "$work/download" -C "$work" "$member"
  source=$work/$member
fi
install -m 0755 "$source" "$dest"
echo "install_checked: $dest from $url (sha256 $sha256)"
