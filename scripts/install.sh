#!/usr/bin/env bash
# Installs the wsbroker C library, its header, pkg-config and CMake package files and the
# standalone binary into a prefix (Linux).
#
#   bash scripts/install.sh [--prefix DIR] [--libdir DIR] [--destdir DIR] [--no-build] [--strip]
#   bash scripts/install.sh --uninstall [--prefix DIR] [--destdir DIR]
#
# Builds first with `cargo build --release` (a no-op when target/release is up to date; skip it
# with --no-build), then installs, with PREFIX=/usr/local and LIBDIR=PREFIX/lib by default:
#
#   PREFIX/include/wsbroker.h
#   LIBDIR/libwsbroker.so.X.Y.Z                 the shared library, SONAME libwsbroker.so.X
#   LIBDIR/libwsbroker.so.X -> libwsbroker.so.X.Y.Z   (what programs load)
#   LIBDIR/libwsbroker.so   -> libwsbroker.so.X       (what -lwsbroker links)
#   LIBDIR/libwsbroker.a                        the static library
#   LIBDIR/libwsbroker_static.a -> libwsbroker.a      (-lwsbroker_static: never the .so)
#   LIBDIR/pkgconfig/wsbroker.pc, wsbroker-static.pc
#   LIBDIR/cmake/wsbroker/wsbrokerConfig.cmake, wsbrokerConfigVersion.cmake
#       (find_package(wsbroker CONFIG): wsbroker::wsbroker, wsbroker::wsbroker_static)
#   PREFIX/bin/wsbroker
#   PREFIX/share/doc/wsbroker/  README.md, using-from-c.md, CHANGELOG.md, the licences
#   PREFIX/share/wsbroker/install-manifest.txt   every installed file (used by --uninstall)
#
# --destdir DIR (or DESTDIR=DIR) stages the files under DIR for packaging; the paths written
# into the .pc and CMake files are those of PREFIX. --strip removes the debug information
# (line tables) from the installed .so, .a and binary (the .so: 33 MB → 5.4 MB).
# Why not cargo-c: it is one more tool to build from crates.io (minutes on a small machine),
# it would generate the header a second time; this script installs what `cargo build` made and
# the tests check (scripts/c-tests.sh installs into target/ and builds through every route).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PREFIX=/usr/local
LIBDIR=""
DESTDIR="${DESTDIR:-}"
BUILD=1
STRIP=0
ACTION=install
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while (($#)); do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --libdir) LIBDIR="${2:?--libdir needs a directory}"; shift 2 ;;
    --libdir=*) LIBDIR="${1#*=}"; shift ;;
    --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift 2 ;;
    --destdir=*) DESTDIR="${1#*=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    --strip) STRIP=1; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n\n' "$1" >&2; usage 2 ;;
  esac
done
[[ "$(uname -s)" == Linux ]] || die "scripts/install.sh installs the Linux libraries (libwsbroker.so); on $(uname -s) copy target/release/ by hand"
# Absolute, normalized paths (the prefix need not exist yet).
PREFIX="$(realpath -m -- "$PREFIX")"
LIBDIR="$(realpath -m -- "${LIBDIR:-$PREFIX/lib}")"
[[ -z "$DESTDIR" ]] || DESTDIR="$(realpath -m -- "$DESTDIR")"
INCLUDEDIR="$PREFIX/include"
BINDIR="$PREFIX/bin"
DOCDIR="$PREFIX/share/doc/wsbroker"
CMAKEDIR="$LIBDIR/cmake/wsbroker"
PCDIR="$LIBDIR/pkgconfig"
MANIFEST="$PREFIX/share/wsbroker/install-manifest.txt"

if [[ "$ACTION" == uninstall ]]; then
  [[ -f "$DESTDIR$MANIFEST" ]] || die "no $DESTDIR$MANIFEST: nothing installed there by scripts/install.sh"
  while IFS= read -r f; do
    [[ -n "$f" ]] && rm -f -- "$DESTDIR$f"
  done <"$DESTDIR$MANIFEST"
  rm -f -- "$DESTDIR$MANIFEST"
  # wsbroker's own directories (the shared ones, lib/ or include/, stay even when empty).
  for d in "$CMAKEDIR" "$DOCDIR" "$(dirname "$MANIFEST")"; do
    rmdir -- "$DESTDIR$d" 2>/dev/null || true
  done
  log "uninstalled wsbroker from $DESTDIR$PREFIX"
  exit 0
fi

need install
need readelf
RELEASE_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
if ((BUILD)); then
  need cargo
  log "cargo build --release"
  cargo build --release
fi
for f in "$RELEASE_DIR/libwsbroker.so" "$RELEASE_DIR/libwsbroker.a" "$RELEASE_DIR/wsbroker" include/wsbroker.h; do
  [[ -f "$f" ]] || die "missing $f: run 'cargo build --release' first (or drop --no-build)"
done

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[[ "$VERSION" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]] || die "cannot read the version from Cargo.toml (got '$VERSION')"
MAJOR="${BASH_REMATCH[1]}"
MINOR="${BASH_REMATCH[2]}"
ABI_VERSION="$(sed -n 's/^#define WSB_ABI_VERSION \([0-9]*\)$/\1/p' include/wsbroker.h)"
[[ -n "$ABI_VERSION" ]] || die "no '#define WSB_ABI_VERSION' in include/wsbroker.h"
SONAME="libwsbroker.so.$MAJOR"
SHARED_FILE="libwsbroker.so.$VERSION"
built_soname="$(readelf -d "$RELEASE_DIR/libwsbroker.so" | sed -n 's/.*Library soname: \[\(.*\)\]$/\1/p')"
[[ "$built_soname" == "$SONAME" ]] \
  || die "$RELEASE_DIR/libwsbroker.so has SONAME '${built_soname:-(none)}', expected $SONAME (build.rs sets it): rebuild with 'cargo build --release'"
# What the static library needs after it, as `rustc --print native-static-libs` lists it for
# linux-gnu targets (std: unwinding, threads, dlopen, math).
NATIVE_STATIC_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
read -ra native_libs <<<"$NATIVE_STATIC_LIBS"
CMAKE_STATIC_LIBS="$(printf '%s\n' "${native_libs[@]}" | sed -e 's/^-l//' -e '/^pthread$/d' | paste -sd ';')"
URL="$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"

INSTALLED=()
# put MODE SRC DEST: installs a file (DEST is the final path, without DESTDIR).
put() {
  install -D -m "$1" -- "$2" "$DESTDIR$3"
  INSTALLED+=("$3")
}
# link TARGET DEST: a relative symlink DEST -> TARGET.
link() {
  mkdir -p -- "$(dirname "$DESTDIR$2")"
  ln -sfn -- "$1" "$DESTDIR$2"
  INSTALLED+=("$2")
}
# expand TEMPLATE DEST: the template with every @NAME@ replaced by SUBST[NAME].
declare -A SUBST=()
expand() {
  local text name
  text="$(cat "$1")"
  for name in "${!SUBST[@]}"; do
    text="${text//@$name@/${SUBST[$name]}}"
  done
  if grep -q '@[A-Z_]\+@' <<<"$text"; then
    die "$1: a placeholder is left: $(grep -o '@[A-Z_]\+@' <<<"$text" | head -n 1)"
  fi
  mkdir -p -- "$(dirname "$DESTDIR$2")"
  printf '%s\n' "$text" >"$DESTDIR$2"
  chmod 644 -- "$DESTDIR$2"
  INSTALLED+=("$2")
}

log "installing wsbroker $VERSION (C ABI $ABI_VERSION) into ${DESTDIR:+$DESTDIR (staged) for }$PREFIX"
put 644 include/wsbroker.h "$INCLUDEDIR/wsbroker.h"
put 755 "$RELEASE_DIR/libwsbroker.so" "$LIBDIR/$SHARED_FILE"
link "$SHARED_FILE" "$LIBDIR/$SONAME"
link "$SONAME" "$LIBDIR/libwsbroker.so"
put 644 "$RELEASE_DIR/libwsbroker.a" "$LIBDIR/libwsbroker.a"
link libwsbroker.a "$LIBDIR/libwsbroker_static.a"
put 755 "$RELEASE_DIR/wsbroker" "$BINDIR/wsbroker"
if ((STRIP)); then
  need strip
  strip --strip-debug "$DESTDIR$LIBDIR/$SHARED_FILE" "$DESTDIR$LIBDIR/libwsbroker.a" "$DESTDIR$BINDIR/wsbroker"
fi

SUBST=(
  [PREFIX]="$PREFIX" [VERSION]="$VERSION" [VERSION_MAJOR]="$MAJOR" [VERSION_MINOR]="$MINOR"
  [ABI_VERSION]="$ABI_VERSION" [SONAME]="$SONAME" [SHARED_FILE]="$SHARED_FILE" [URL]="$URL"
  [NATIVE_STATIC_LIBS]="$NATIVE_STATIC_LIBS" [CMAKE_STATIC_LIBS]="$CMAKE_STATIC_LIBS"
  [SIZEOF_VOID_P]="$(($(getconf LONG_BIT) / 8))"
  [CMAKE_TO_LIBDIR]="$(realpath -m --relative-to="$CMAKEDIR" "$LIBDIR")"
  [CMAKE_TO_INCLUDEDIR]="$(realpath -m --relative-to="$CMAKEDIR" "$INCLUDEDIR")"
)
# The .pc files name their directories through ${prefix} where they lie below it.
SUBST[INCLUDEDIR]="\${prefix}/include"
SUBST[LIBDIR]="$LIBDIR"
[[ "$LIBDIR" == "$PREFIX"/* ]] && SUBST[LIBDIR]="\${exec_prefix}${LIBDIR#"$PREFIX"}"
expand packaging/pkgconfig/wsbroker.pc.in "$PCDIR/wsbroker.pc"
expand packaging/pkgconfig/wsbroker-static.pc.in "$PCDIR/wsbroker-static.pc"
expand packaging/cmake/wsbrokerConfig.cmake.in "$CMAKEDIR/wsbrokerConfig.cmake"
expand packaging/cmake/wsbrokerConfigVersion.cmake.in "$CMAKEDIR/wsbrokerConfigVersion.cmake"

for f in README.md docs/using-from-c.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE; do
  [[ -f "$f" ]] && put 644 "$f" "$DOCDIR/$(basename "$f")"
done

mkdir -p -- "$(dirname "$DESTDIR$MANIFEST")"
printf '%s\n' "${INSTALLED[@]}" >"$DESTDIR$MANIFEST"
log "installed ${#INSTALLED[@]} files (list: $MANIFEST)"
case ":${LD_LIBRARY_PATH:-}:" in *":$LIBDIR:"*) ;; *)
  if [[ -z "$DESTDIR" ]] && ! ldconfig -p 2>/dev/null | grep -q "$LIBDIR/$SONAME"; then
    log "note: $LIBDIR is not in the loader's cache: run 'ldconfig' (system directories), or link with -Wl,-rpath,$LIBDIR"
  fi ;;
esac
