#!/bin/sh
# Install (or uninstall) kubectl-gate, the `kubectl gate` plugin of Canary Gate.
#
#   curl -sSL https://raw.githubusercontent.com/canary-gate/canary-gate/main/install.sh | sudo bash
#   curl -sSL .../install.sh | sudo INSTALL_PATH=/opt/bin bash
#   curl -sSL .../install.sh | sudo bash -s -- uninstall
#
# Environment:
#   INSTALL_PATH               where to install (default /usr/local/bin); give the same one to uninstall
#   VERSION                    release to install, e.g. 0.1.0 or v0.1.0 (default: the latest release)
#   KUBECTL_GATE_DOWNLOAD_URL  base URL of the releases, for mirrors and tests
#                              (default https://github.com/canary-gate/canary-gate/releases);
#                              files are read from <base>/download/<tag>/<file> and the latest
#                              release from <base>/latest/download/checksums.txt
#
# Installs kubectl-gate, the kubectl_complete-gate completion shim, and a canary-gate symlink
# (the Go original's command name). Every archive is checked against its published sha256.
# The script never calls sudo: run it as a user who may write to INSTALL_PATH.

set -eu

DEFAULT_DOWNLOAD_URL="https://github.com/canary-gate/canary-gate/releases"
BIN="kubectl-gate"
SHIM="kubectl_complete-gate"
ALIAS="canary-gate"

say() {
    printf 'install.sh: %s\n' "$*"
}

warn() {
    printf 'install.sh: warning: %s\n' "$*" >&2
}

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<'EOF'
usage: install.sh [install|uninstall]

  install     download, verify and install kubectl-gate (the default)
  uninstall   remove kubectl-gate, kubectl_complete-gate and the canary-gate symlink

environment: INSTALL_PATH (default /usr/local/bin), VERSION (default latest),
             KUBECTL_GATE_DOWNLOAD_URL (default https://github.com/canary-gate/canary-gate/releases)
EOF
}

detect_os() {
    os=$(uname -s 2>/dev/null || true)
    case "$os" in
        Linux) echo linux ;;
        Darwin) echo darwin ;;
        MINGW* | MSYS* | CYGWIN* | Windows*)
            die "Windows is not supported by this script: use 'kubectl krew install gate' or download kubectl-gate.exe from the releases page" ;;
        *) die "unsupported operating system '$os': download a binary from the releases page or use 'pip install canary-gate'" ;;
    esac
}

detect_arch() {
    arch=$(uname -m 2>/dev/null || true)
    case "$arch" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "unsupported architecture '$arch' (supported: amd64, arm64): try 'pip install canary-gate'" ;;
    esac
    # An x86_64 shell under Rosetta on Apple silicon: install the native arm64 binary.
    if [ "$1" = darwin ] && [ "$arch" = amd64 ]; then
        if [ "$(sysctl -n hw.optional.arm64 2>/dev/null || true)" = 1 ]; then
            arch=arm64
        fi
    fi
    echo "$arch"
}

check_libc() {
    # PyInstaller binaries are built against glibc; musl (Alpine) cannot run them.
    if [ "$1" = linux ] && command -v ldd >/dev/null 2>&1; then
        if ldd --version 2>&1 | grep -qi musl; then
            die "this system uses musl libc (Alpine?); the prebuilt binaries need glibc: use 'pip install canary-gate'"
        fi
    fi
}

# download URL FILE: fetch URL into FILE, failing on HTTP errors.
download() {
    case "$1" in
        https://*) proto='=https' ;;
        *) proto='=http,https' ;;
    esac
    if command -v curl >/dev/null 2>&1; then
        curl --proto "$proto" -fsSL --retry 3 -o "$2" "$1" 2>/dev/null || return 1
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1" || return 1
    else
        die "neither curl nor wget is installed"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 "$1" | sed 's/^.*= *//'
    else
        die "no sha256 tool found (sha256sum, shasum or openssl): cannot verify the download"
    fi
}

# Is $1 a symlink that points at kubectl-gate?
is_our_alias() {
    [ -L "$1" ] || return 1
    target=$(readlink "$1" 2>/dev/null || true)
    case "$target" in
        "$BIN" | */"$BIN") return 0 ;;
        *) return 1 ;;
    esac
}

do_uninstall() {
    dir=$1
    removed=0
    for name in "$BIN" "$SHIM"; do
        if [ -e "$dir/$name" ] || [ -L "$dir/$name" ]; then
            rm -f "$dir/$name" || die "cannot remove $dir/$name: run as a user who may write to $dir (e.g. with sudo)"
            say "removed $dir/$name"
            removed=1
        fi
    done
    if is_our_alias "$dir/$ALIAS"; then
        rm -f "$dir/$ALIAS" || die "cannot remove $dir/$ALIAS"
        say "removed $dir/$ALIAS"
        removed=1
    elif [ -e "$dir/$ALIAS" ]; then
        warn "left $dir/$ALIAS alone: it is not a link to $BIN (the Go canary-gate?)"
    fi
    if [ "$removed" = 0 ]; then
        say "nothing to remove in $dir (installed elsewhere? set INSTALL_PATH to the directory used for the install)"
    fi
}

do_install() {
    dir=$1
    os=$(detect_os)
    arch=$(detect_arch "$os")
    check_libc "$os"
    base=${KUBECTL_GATE_DOWNLOAD_URL:-$DEFAULT_DOWNLOAD_URL}
    base=${base%/}

    tmp=$(mktemp -d 2>/dev/null || mktemp -d -t kubectl-gate)
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM

    version=${VERSION:-}
    if [ -z "$version" ]; then
        download "$base/latest/download/checksums.txt" "$tmp/checksums.txt" \
            || die "cannot find the latest release at $base/latest/download/checksums.txt (set VERSION to pick one)"
        archive=$(awk -v suffix="_${os}_${arch}.tar.gz" \
            'length($2) > length(suffix) && substr($2, length($2) - length(suffix) + 1) == suffix { print $2; exit }' \
            "$tmp/checksums.txt")
        [ -n "$archive" ] || die "the latest release has no archive for ${os}/${arch}"
        tag=${archive#"$BIN"_}
        tag=${tag%"_${os}_${arch}.tar.gz"}
    else
        case "$version" in
            v*) tag=$version ;;
            *) tag=v$version ;;
        esac
        archive="${BIN}_${tag}_${os}_${arch}.tar.gz"
    fi
    case "$tag" in
        v[0-9]*) ;;
        *) die "not a release version: '$tag' (expected e.g. v0.1.0)" ;;
    esac

    url="$base/download/$tag/$archive"
    say "downloading $url"
    download "$url" "$tmp/$archive" || die "cannot download $url (does release $tag exist for ${os}/${arch}?)"
    download "$url.sha256" "$tmp/$archive.sha256" || die "cannot download the checksum $url.sha256"

    expected=$(awk 'NR == 1 { print tolower($1) }' "$tmp/$archive.sha256")
    actual=$(sha256_of "$tmp/$archive")
    if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
        die "checksum mismatch for $archive: expected '$expected', got '$actual'; nothing was installed"
    fi
    say "checksum verified ($actual)"

    mkdir "$tmp/x"
    tar -xzf "$tmp/$archive" -C "$tmp/x" || die "cannot unpack $archive"
    if [ ! -f "$tmp/x/$BIN" ] || [ -L "$tmp/x/$BIN" ]; then
        die "$archive does not contain $BIN"
    fi

    if [ ! -d "$dir" ]; then
        mkdir -p "$dir" 2>/dev/null || die "cannot create $dir: run as a user who may (e.g. with sudo), or set INSTALL_PATH"
    fi
    [ -w "$dir" ] || die "cannot write to $dir: run as a user who may (e.g. with sudo), or set INSTALL_PATH to a directory you own"

    # Copy next to the target, then rename: a running kubectl-gate is never half-written.
    for name in "$BIN" "$SHIM"; do
        [ -f "$tmp/x/$name" ] || continue
        cp "$tmp/x/$name" "$dir/.$name.tmp.$$" || die "cannot write $dir/$name"
        chmod 0755 "$dir/.$name.tmp.$$"
        mv -f "$dir/.$name.tmp.$$" "$dir/$name" || die "cannot write $dir/$name"
        say "installed $dir/$name"
    done
    if is_our_alias "$dir/$ALIAS" || { [ ! -e "$dir/$ALIAS" ] && [ ! -L "$dir/$ALIAS" ]; }; then
        ln -sf "$BIN" "$dir/$ALIAS"
        say "linked $dir/$ALIAS -> $BIN"
    else
        warn "left $dir/$ALIAS alone: it is not a link to $BIN (the Go canary-gate?)"
    fi

    if out=$("$dir/$BIN" version --client 2>&1); then
        say "$out"
    else
        warn "$dir/$BIN does not run here: $out"
    fi
    case ":${PATH}:" in
        *":$dir:"*) ;;
        *) warn "$dir is not on PATH: add it to use 'kubectl gate'" ;;
    esac
    say "done: try 'kubectl gate --help'"
}

main() {
    action=install
    if [ $# -gt 0 ]; then
        case "$1" in
            install) ;;
            uninstall | --uninstall) action=uninstall ;;
            -h | --help) usage; return 0 ;;
            *) usage >&2; die "unknown argument '$1'" ;;
        esac
        [ $# -le 1 ] || die "too many arguments"
    fi
    dir=${INSTALL_PATH:-/usr/local/bin}
    if [ "$action" = uninstall ]; then
        do_uninstall "$dir"
    else
        do_install "$dir"
    fi
}

main "$@"
