#!/usr/bin/env bash
# Build the installable Splunk app smb_traffic_spike:
#
#     splunk_app/package.sh            -> target/dist/smb_traffic_spike-<version>.tgz
#
# <version> is the [package] version of Cargo.toml. The script
#   - adds the rustup targets x86_64-unknown-linux-musl and
#     aarch64-unknown-linux-musl if they are missing;
#   - builds smbdensity for both (static musl; aarch64 linked with rust-lld;
#     x86_64 non-PIE via -C relocation-model=static);
#   - stages the app (default/*.conf, metadata/default.meta, README.md with
#     the binaries' SHA-256, README/*.spec, app.manifest, bin/smbdensity
#     (aarch64), linux_x86_64/bin/smbdensity (x86_64), empty lookups/);
#   - writes a reproducible tarball: one top folder, sorted entries, owner and
#     group 0, fixed mtime, modes 755 (dirs and the two binaries) / 644, gzip
#     without name or timestamp. Two runs give byte-identical files.
#
# Environment:
#   SOURCE_DATE_EPOCH      mtime of every entry (default: 1704067200, 2024-01-01)
#   SMBDENSITY_SKIP_BUILD  =1: do not run cargo; package the existing binaries
#   SMBDENSITY_SOURCE_REPO source repository named in the README's Binary File
#                          Declaration (default: Cargo.toml `repository`, if any)
#   CARGO_TARGET_DIR       honoured as cargo does
#
# Needs: cargo/rustc (rustup), GNU tar >= 1.28, gzip, sha256sum, sed, awk.
set -euo pipefail
export LC_ALL=C
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

APP=smb_traffic_spike
BIN=smbdensity
T_X86=x86_64-unknown-linux-musl
T_ARM=aarch64-unknown-linux-musl
EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=$ROOT/target/dist

log() { printf 'package.sh: %s\n' "$*" >&2; }
die() { printf 'package.sh: error: %s\n' "$*" >&2; exit 1; }

# --- version ---------------------------------------------------------------
# The first `version = "..."` inside the [package] table of Cargo.toml.
VERSION=$(awk '
  /^\[/ { in_pkg = ($0 ~ /^\[package\][[:space:]]*$/) ; next }
  in_pkg && /^[[:space:]]*version[[:space:]]*=/ {
    v = $0; sub(/^[^=]*=[[:space:]]*"/, "", v); sub(/".*$/, "", v); print v; exit
  }' Cargo.toml)
[[ $VERSION =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] \
  || die "Cargo.toml version '$VERSION' is not MAJOR.MINOR.PATCH (Splunk needs plain semver)"
# app.conf [install] build: a positive integer that grows with every release.
BUILD=$(( BASH_REMATCH[1] * 1000000 + BASH_REMATCH[2] * 1000 + BASH_REMATCH[3] ))
(( BUILD > 0 )) || BUILD=1
REPO_URL=${SMBDENSITY_SOURCE_REPO:-$(awk '
  /^\[/ { in_pkg = ($0 ~ /^\[package\][[:space:]]*$/) ; next }
  in_pkg && /^[[:space:]]*repository[[:space:]]*=/ {
    v = $0; sub(/^[^=]*=[[:space:]]*"/, "", v); sub(/".*$/, "", v); print v; exit
  }' Cargo.toml)}
REPO_URL=${REPO_URL:-the smbdensity project repository}
if COMMIT=$(git -C "$ROOT" rev-parse --verify -q HEAD 2>/dev/null); then
  if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    COMMIT="$COMMIT (with uncommitted changes)"
  fi
else
  COMMIT=unknown
fi
RUSTC_VERSION=$(rustc --version | awk '{print $2}')
log "app $APP version $VERSION build $BUILD, rustc $RUSTC_VERSION"

# --- build -----------------------------------------------------------------
if [[ ${SMBDENSITY_SKIP_BUILD:-0} != 1 ]]; then
  if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed)
    missing=()
    for t in "$T_X86" "$T_ARM"; do
      grep -qx "$t" <<<"$installed" || missing+=("$t")
    done
    if ((${#missing[@]})); then
      log "rustup target add ${missing[*]}"
      rustup target add "${missing[@]}"
    fi
  else
    log "rustup not found; assuming the musl targets are installed"
  fi

  # Flags per target (they take precedence over nothing else: clear the
  # global ones so a developer's RUSTFLAGS cannot change the artefact).
  unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
  SYSROOT=$(rustc --print sysroot)
  CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
  COMMON="-C strip=symbols --remap-path-prefix=$ROOT=$BIN --remap-path-prefix=$CARGO_HOME_DIR=cargo --remap-path-prefix=$SYSROOT=rust"
  [[ $COMMON == *'  '* || $ROOT == *' '* || $CARGO_HOME_DIR == *' '* ]] \
    && die "paths with spaces are not supported"

  log "cargo build --release --locked --target $T_X86 (-C relocation-model=static)"
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C relocation-model=static $COMMON" \
    cargo build --release --locked --target "$T_X86" --bin "$BIN"

  log "cargo build --release --locked --target $T_ARM (linker rust-lld)"
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$COMMON" \
    cargo build --release --locked --target "$T_ARM" --bin "$BIN"
fi

X86_BIN=$TARGET_DIR/$T_X86/release/$BIN
ARM_BIN=$TARGET_DIR/$T_ARM/release/$BIN
[[ -f $X86_BIN ]] || die "missing $X86_BIN"
[[ -f $ARM_BIN ]] || die "missing $ARM_BIN"

# --- stage -----------------------------------------------------------------
STAGE=$DIST/stage
A=$STAGE/$APP
rm -rf "$STAGE"
mkdir -p "$A/default" "$A/metadata" "$A/README" "$A/bin" "$A/linux_x86_64/bin" "$A/lookups"

# default/: only the .conf files (never a local/ dir or stray editor files).
for f in default/*.conf; do
  cp "$f" "$A/default/"
done
sed -i -E \
  -e "s/^version[[:space:]]*=.*/version = $VERSION/" \
  -e "s/^build[[:space:]]*=.*/build = $BUILD/" \
  "$A/default/app.conf"

cp splunk_app/metadata/default.meta "$A/metadata/default.meta"
cp splunk_app/README/*.spec "$A/README/"
sed -E "s/^(    \"version\": )\"[^\"]*\"/\1\"$VERSION\"/" splunk_app/app.manifest > "$A/app.manifest"
if [[ -d splunk_app/static ]]; then
  cp -r splunk_app/static "$A/static"
fi

cp "$ARM_BIN" "$A/bin/$BIN"
cp "$X86_BIN" "$A/linux_x86_64/bin/$BIN"
SHA_ARM=$(sha256sum "$A/bin/$BIN" | awk '{print $1}')
SHA_X86=$(sha256sum "$A/linux_x86_64/bin/$BIN" | awk '{print $1}')

# README.md with the Binary File Declaration filled in. Escape sed's
# replacement metacharacters in the free-text values.
esc() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
sed -e "s|@VERSION@|$(esc "$VERSION")|g" \
    -e "s|@SHA256_AARCH64@|$SHA_ARM|g" \
    -e "s|@SHA256_X86_64@|$SHA_X86|g" \
    -e "s|@SOURCE_REPO@|$(esc "$REPO_URL")|g" \
    -e "s|@SOURCE_COMMIT@|$(esc "$COMMIT")|g" \
    -e "s|@RUSTC_VERSION@|$(esc "$RUSTC_VERSION")|g" \
    splunk_app/README.md > "$A/README.md"
if grep -n '@[A-Z0-9_]*@' "$A/README.md" "$A/default/app.conf" "$A/app.manifest"; then
  die "unfilled placeholder in the staged app"
fi

# Modes: directories 755, the two binaries 755, everything else 644.
find "$A" -type d -exec chmod 755 {} +
find "$A" -type f -exec chmod 644 {} +
chmod 755 "$A/bin/$BIN" "$A/linux_x86_64/bin/$BIN"
# Nothing hidden, nothing local.
if find "$A" -name '.*' -o -name local -o -name local.meta | grep -q .; then
  die "dotfile or local/ in the staged app"
fi

# --- tarball ---------------------------------------------------------------
OUT=$DIST/$APP-$VERSION.tgz
TMP=$OUT.tmp.$$
tar --create --format=gnu --sort=name \
    --owner=0 --group=0 --numeric-owner \
    --mtime="@$EPOCH" \
    --no-acls --no-xattrs --no-selinux \
    -C "$STAGE" -f - "$APP" | gzip -9 -n > "$TMP"
mv -f "$TMP" "$OUT"
rm -rf "$STAGE"

log "wrote ${OUT#"$ROOT"/} ($(wc -c < "$OUT") bytes)"
log "sha256 $(sha256sum "$OUT" | awk '{print $1}')"
log "bin/$BIN (aarch64) sha256 $SHA_ARM"
log "linux_x86_64/bin/$BIN (x86_64) sha256 $SHA_X86"
printf '%s\n' "$OUT"
