#!/bin/sh
# Install (or uninstall) kubectl-gate, the `kubectl gate` plugin of Canary Gate.
#
#   curl -sSL https://raw.githubusercontent.com/canary-gate/canary-gate/main/install.sh | sudo bash
#   curl -sSL .../install.sh | sudo INSTALL_PATH=/opt/bin bash
#   curl -sSL .../install.sh | sudo bash -s -- uninstall
#   curl -sSL .../install.sh | sudo bash -s -- --onefile
#
# Environment:
#   INSTALL_PATH               where the commands go (default /usr/local/bin); give the same one to uninstall
#   INSTALL_LIB                where the program's files go, one directory per version
#                              (default: <INSTALL_PATH>/../lib/kubectl-gate, so /usr/local/lib/kubectl-gate)
#   VERSION                    release to install, e.g. 0.1.0 or v0.1.0 (default: the latest release)
#   KUBECTL_GATE_ONEFILE=1     install the single-file build instead (same as --onefile)
#   KUBECTL_GATE_DOWNLOAD_URL  base URL of the releases, for mirrors and tests
#                              (default https://github.com/canary-gate/canary-gate/releases);
#                              files are read from <base>/download/<tag>/<file> and the latest
#                              release from <base>/latest/download/checksums.txt
#
# By default installs the onedir build (kubectl-gate_<tag>_<os>_<arch>_onedir.tar.gz), which starts
# several times faster than the single file: its tree goes to INSTALL_LIB/<tag>/ and
# INSTALL_PATH/kubectl-gate is a symlink to INSTALL_LIB/<tag>/kubectl-gate; installing another
# version switches the link, then removes the old tree. A release without onedir archives gets
# the single file. --onefile installs the single file (kubectl-gate_<tag>_<os>_<arch>.tar.gz, the
# one krew uses) as INSTALL_PATH/kubectl-gate, nothing in INSTALL_LIB.
# Either way also installs the kubectl_complete-gate completion shim and a canary-gate symlink
# (the Go original's command name). Every archive is checked against its published sha256.
# `uninstall` removes the commands and the trees in INSTALL_LIB (found through the link).
# The script never calls sudo: run it as a user who may write to INSTALL_PATH and INSTALL_LIB.

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
usage: install.sh [install|uninstall] [--onefile]

  install     download, verify and install kubectl-gate (the default)
  uninstall   remove kubectl-gate, kubectl_complete-gate, the canary-gate symlink
              and the installed trees in INSTALL_LIB
  --onefile   install the single-file build (slower to start; no INSTALL_LIB)

environment: INSTALL_PATH (default /usr/local/bin),
             INSTALL_LIB (default INSTALL_PATH/../lib/kubectl-gate), VERSION (default latest),
             KUBECTL_GATE_ONEFILE=1 (as --onefile),
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

# lib_dir BINDIR: where the onedir trees go (INSTALL_LIB, else BINDIR/../lib/kubectl-gate).
lib_dir() {
    if [ -n "${INSTALL_LIB:-}" ]; then
        lib=${INSTALL_LIB%/}
    else
        parent=$(dirname "$1")
        lib="${parent%/}/lib/kubectl-gate"
    fi
    case "$lib" in
        /*) ;;
        *) lib="$(pwd)/$lib" ;;
    esac
    echo "$lib"
}

# Is $1 a tree this script installed (<lib>/v<version> holding kubectl-gate and _internal/)?
is_tree() {
    case "${1##*/}" in
        v[0-9]*) ;;
        *) return 1 ;;
    esac
    [ -d "$1" ] && [ ! -L "$1" ] && [ -f "$1/$BIN" ] && [ ! -L "$1/$BIN" ] && [ -d "$1/_internal" ]
}

# current_tree BINDIR: the installed tree BINDIR/kubectl-gate links to, if any.
current_tree() {
    if [ -L "$1/$BIN" ]; then
        target=$(readlink "$1/$BIN" 2>/dev/null || true)
        case "$target" in
            /*/"$BIN")
                if is_tree "${target%/"$BIN"}"; then
                    echo "${target%/"$BIN"}"
                fi
                ;;
        esac
    fi
    return 0
}

# remove_tree TREE: delete an installed tree, then its lib directory if that is now empty.
remove_tree() {
    is_tree "$1" || return 0
    rm -rf "$1" || die "cannot remove $1: run as a user who may write to ${1%/*} (e.g. with sudo)"
    say "removed $1"
    rmdir "${1%/*}" 2>/dev/null || true
}

# prune_lib LIB KEEP: remove every installed tree in LIB except LIB/KEEP, then LIB if empty.
prune_lib() {
    for tree in "$1"/v*; do
        [ "$tree" != "$1/$2" ] || continue
        if is_tree "$tree"; then
            remove_tree "$tree"
        elif [ -e "$tree" ]; then
            warn "left $tree alone: it is not a kubectl-gate tree"
        fi
    done
    rmdir "$1" 2>/dev/null || true
}

do_uninstall() {
    dir=$1
    removed=0
    lib=$(lib_dir "$dir")
    tree=$(current_tree "$dir")
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
    if [ -n "$tree" ]; then
        remove_tree "$tree"
        removed=1
    fi
    if [ -d "$lib" ]; then
        prune_lib "$lib" ""
        removed=1
    fi
    if [ "$removed" = 0 ]; then
        say "nothing to remove in $dir (installed elsewhere? set INSTALL_PATH to the directory used for the install)"
    fi
}

# find_archive KIND: set tag and archive for the release asked for; KIND is "_onedir" or "".
# Returns 1 if the latest release has no such archive.
find_archive() {
    suffix="_${os}_${arch}$1.tar.gz"
    if [ -z "${VERSION:-}" ]; then
        if [ ! -f "$tmp/checksums.txt" ]; then
            download "$base/latest/download/checksums.txt" "$tmp/checksums.txt" \
                || die "cannot find the latest release at $base/latest/download/checksums.txt (set VERSION to pick one)"
        fi
        archive=$(awk -v suffix="$suffix" \
            'length($2) > length(suffix) && substr($2, length($2) - length(suffix) + 1) == suffix { print $2; exit }' \
            "$tmp/checksums.txt")
        [ -n "$archive" ] || return 1
        tag=${archive#"$BIN"_}
        tag=${tag%"$suffix"}
    else
        case "$VERSION" in
            v*) tag=$VERSION ;;
            *) tag=v$VERSION ;;
        esac
        archive="${BIN}_${tag}${suffix}"
    fi
    case "$tag" in
        v[0-9]*) ;;
        *) die "not a release version: '$tag' (expected e.g. v0.1.0)" ;;
    esac
}

# ensure_dir DIR VARIABLE: create DIR if needed and check that it is writable.
ensure_dir() {
    if [ ! -d "$1" ]; then
        mkdir -p "$1" 2>/dev/null || die "cannot create $1: run as a user who may (e.g. with sudo), or set $2"
    fi
    [ -w "$1" ] || die "cannot write to $1: run as a user who may (e.g. with sudo), or set $2 to a directory you own"
}

do_install() {
    dir=$1
    onefile=$2
    os=$(detect_os)
    arch=$(detect_arch "$os")
    check_libc "$os"
    base=${KUBECTL_GATE_DOWNLOAD_URL:-$DEFAULT_DOWNLOAD_URL}
    base=${base%/}

    tmp=$(mktemp -d 2>/dev/null || mktemp -d -t kubectl-gate)
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM

    kind=_onedir
    [ "$onefile" = 0 ] || kind=
    if ! find_archive "$kind"; then
        [ -n "$kind" ] || die "the latest release has no archive for ${os}/${arch}"
        warn "the latest release has no onedir archive for ${os}/${arch}: installing the single-file build"
        kind=
        find_archive "" || die "the latest release has no archive for ${os}/${arch}"
    fi

    url="$base/download/$tag/$archive"
    say "downloading $url"
    if ! download "$url" "$tmp/$archive"; then
        # A release from before the onedir archives: fall back to its single file.
        if [ -n "$kind" ] && [ -n "${VERSION:-}" ]; then
            warn "cannot download $url: trying the single-file build of $tag"
            kind=
            find_archive ""
            url="$base/download/$tag/$archive"
            say "downloading $url"
            download "$url" "$tmp/$archive" || die "cannot download $url (does release $tag exist for ${os}/${arch}?)"
        else
            die "cannot download $url (does release $tag exist for ${os}/${arch}?)"
        fi
    fi
    download "$url.sha256" "$tmp/$archive.sha256" || die "cannot download the checksum $url.sha256"

    expected=$(awk 'NR == 1 { print tolower($1) }' "$tmp/$archive.sha256")
    actual=$(sha256_of "$tmp/$archive")
    if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
        die "checksum mismatch for $archive: expected '$expected', got '$actual'; nothing was installed"
    fi
    say "checksum verified ($actual)"

    mkdir "$tmp/x"
    tar -xzf "$tmp/$archive" -C "$tmp/x" || die "cannot unpack $archive"
    odd=$(find "$tmp/x" ! -type f ! -type d | sed -n 1p)
    [ -z "$odd" ] || die "$archive holds something other than files and directories (${odd#"$tmp/x/"}); nothing was installed"
    if [ ! -f "$tmp/x/$BIN" ]; then
        die "$archive does not contain $BIN"
    fi
    if [ -n "$kind" ] && [ ! -d "$tmp/x/_internal" ]; then
        die "$archive is not a onedir build (no _internal/); nothing was installed"
    fi

    ensure_dir "$dir" INSTALL_PATH
    old_tree=$(current_tree "$dir")

    if [ -n "$kind" ]; then
        lib=$(lib_dir "$dir")
        ensure_dir "$lib" INSTALL_LIB
        # Copy beside the target, rename, then switch the link: a running kubectl-gate never
        # sees a half-written tree.
        stage="$lib/.$tag.tmp.$$"
        rm -rf "$stage"
        mkdir "$stage" || die "cannot write to $lib"
        for name in "$BIN" _internal LICENSE; do
            [ -e "$tmp/x/$name" ] || continue
            cp -R "$tmp/x/$name" "$stage/" || { rm -rf "$stage"; die "cannot write $stage/$name"; }
        done
        chmod -R u+rwX,go+rX,go-w "$stage"
        chmod 0755 "$stage/$BIN"
        if [ -e "$lib/$tag" ]; then
            mv "$lib/$tag" "$lib/.$tag.old.$$" || die "cannot replace $lib/$tag"
        fi
        mv "$stage" "$lib/$tag" || die "cannot write $lib/$tag"
        rm -rf "$lib/.$tag.old.$$"
        say "installed $lib/$tag"
        ln -s "$lib/$tag/$BIN" "$dir/.$BIN.tmp.$$" || die "cannot write $dir/$BIN"
        mv -f "$dir/.$BIN.tmp.$$" "$dir/$BIN" || die "cannot write $dir/$BIN"
        say "linked $dir/$BIN -> $lib/$tag/$BIN"
        files=$SHIM
    else
        files="$BIN $SHIM"
    fi

    # Copy next to the target, then rename: a running kubectl-gate is never half-written.
    for name in $files; do
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

    # The tree the link pointed to before (another version, another INSTALL_LIB, or now --onefile).
    if [ -n "$old_tree" ] && { [ -z "$kind" ] || [ "$old_tree" != "$lib/$tag" ]; }; then
        remove_tree "$old_tree"
    fi
    if [ -n "$kind" ]; then
        prune_lib "$lib" "$tag"
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
    onefile=0
    case "${KUBECTL_GATE_ONEFILE:-0}" in
        1 | true | yes) onefile=1 ;;
    esac
    for arg in "$@"; do
        case "$arg" in
            install) action=install ;;
            uninstall | --uninstall) action=uninstall ;;
            --onefile) onefile=1 ;;
            -h | --help) usage; return 0 ;;
            *) usage >&2; die "unknown argument '$arg'" ;;
        esac
    done
    dir=${INSTALL_PATH:-/usr/local/bin}
    if [ "$action" = uninstall ]; then
        do_uninstall "$dir"
    else
        do_install "$dir" "$onefile"
    fi
}

main "$@"
