#!/bin/sh
# Vendor Leaflet into consoles/static/vendor/leaflet/ from the npm registry (make vendor).
# The files are committed, so a checkout works offline and CI needs no registry: this
# script only runs when they are missing or do not match SHA256SUMS. It fetches the
# pinned tarball with `npm pack`, checks it against the registry's pinned integrity
# hash (sha512) before unpacking, and copies the dist files ECC serves.
set -eu
VERSION=1.9.4
INTEGRITY=sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==
DEST=consoles/static/vendor/leaflet
FILES="leaflet.js leaflet.css images/layers.png images/layers-2x.png images/marker-icon.png images/marker-icon-2x.png images/marker-shadow.png"

if [ -f "$DEST/SHA256SUMS" ] && (cd "$DEST" && sha256sum --quiet -c SHA256SUMS) 2>/dev/null; then
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "vendor-leaflet: $DEST is incomplete and npm is missing"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "leaflet@$VERSION" >/dev/null)
tarball="$tmp/leaflet-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
	echo "vendor-leaflet: leaflet-$VERSION.tgz has integrity $got, expected $INTEGRITY"; exit 1
fi
tar -xzf "$tarball" -C "$tmp"
mkdir -p "$DEST/images"
for f in $FILES; do cp "$tmp/package/dist/$f" "$DEST/$f"; done
cp "$tmp/package/LICENSE" "$DEST/LICENSE"
echo "$VERSION" > "$DEST/VERSION"
(cd "$DEST" && sha256sum $FILES LICENSE VERSION > SHA256SUMS)
echo "vendor-leaflet: leaflet $VERSION in $DEST"
