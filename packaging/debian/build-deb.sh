#!/bin/sh
# Builds wikistream-archiver_<version>_<arch>.deb from a static binary with dpkg-deb.
# Usage: packaging/debian/build-deb.sh BINARY DEB_ARCH OUT_DIR
set -eu
binary=$1
arch=$2
out=$3
packaging=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$packaging/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# mktemp makes 0700; the package's root directory must be 0755 like every directory in it.
chmod 0755 "$stage"

install -D -m 0755 "$binary" "$stage/usr/bin/wikistream-archiver"
install -D -m 0644 "$packaging/systemd/wikistream-archiver.service" \
    "$stage/usr/lib/systemd/system/wikistream-archiver.service"
install -D -m 0644 "$packaging/debian/default" "$stage/etc/default/wikistream-archiver"
# Completions are the same on every architecture: made by this binary if it runs here (the
# amd64 build), else by a host build.
gen=$binary
"$gen" --version >/dev/null 2>&1 || {
    CARGO_TERM_QUIET=true make -s --no-print-directory -C "$root" release
    gen="$root/target/release/wikistream-archiver"
}
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
"$gen" completions bash > "$stage/usr/share/bash-completion/completions/wikistream-archiver"
"$gen" completions zsh > "$stage/usr/share/zsh/vendor-completions/_wikistream-archiver"
"$gen" completions fish > "$stage/usr/share/fish/vendor_completions.d/wikistream-archiver.fish"
chmod 0644 "$stage"/usr/share/bash-completion/completions/* "$stage"/usr/share/zsh/vendor-completions/* \
    "$stage"/usr/share/fish/vendor_completions.d/*
install -d "$stage/usr/share/man/man1"
gzip -9n < "$packaging/man/wikistream-archiver.1" > "$stage/usr/share/man/man1/wikistream-archiver.1.gz"
doc="$stage/usr/share/doc/wikistream-archiver"
install -d "$doc/examples/runit/wikistream-archiver/log" "$doc/examples/cron"
gzip -9n < "$root/README.md" > "$doc/README.md.gz"
install -m 0644 "$packaging/debian/copyright" "$doc/copyright"
gzip -9n < "$packaging/debian/changelog" > "$doc/changelog.gz"
install -m 0755 "$packaging/runit/wikistream-archiver/run" "$doc/examples/runit/wikistream-archiver/run"
install -m 0755 "$packaging/runit/wikistream-archiver/log/run" "$doc/examples/runit/wikistream-archiver/log/run"
install -m 0644 "$packaging/cron/wikistream-archiver" "$doc/examples/cron/wikistream-archiver"
install -D -m 0644 "$packaging/debian/lintian-overrides" \
    "$stage/usr/share/lintian/overrides/wikistream-archiver"

install -d -m 0755 "$stage/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$packaging/debian/$script" "$stage/DEBIAN/$script"
done
echo /etc/default/wikistream-archiver > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    "$packaging/debian/control.in" > "$stage/DEBIAN/control"

mkdir -p "$out"
deb="$out/wikistream-archiver_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
