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
#   INSTALL_LIB                where the program's files and the install receipt go, one directory
#                              per version (default: <INSTALL_PATH>/../lib/kubectl-gate)
#   VERSION                    release to install, e.g. 0.1.0 or v0.1.0 (default: the latest release)
#   KUBECTL_GATE_ONEFILE=1     install the single-file build instead (same as --onefile)
#   KUBECTL_GATE_DOWNLOAD_URL  base URL of the releases, for mirrors and tests
#                              (default https://github.com/canary-gate/canary-gate/releases);
#                              files are read from <base>/download/<tag>/<file> and the latest
#                              release from <base>/latest/download/checksums.txt
#
# Before downloading, checks the system: Linux needs glibc 2.28 or newer (RHEL 8, Debian 10,
# Ubuntu 18.10 and later); musl (Alpine) and older glibc are told to use pip instead.
# By default installs the onedir build (kubectl-gate_<tag>_<os>_<arch>_onedir.tar.gz), which starts
# several times faster than the single file: its tree goes to INSTALL_LIB/<tag>/ and
# INSTALL_PATH/kubectl-gate is a symlink to INSTALL_LIB/<tag>/kubectl-gate. A release without
# onedir archives gets the single file; --onefile asks for it (the archive krew's macOS users get).
# Also installs the kubectl_complete-gate completion shim. Every archive is checked against its
# published sha256; the installed command must then run (`kubectl-gate version --client`), or the
# previous state is put back. An interrupt (Ctrl-C, SIGTERM, a dropped connection) leaves nothing
# behind either.
# What it installed is written to INSTALL_LIB/.install-receipt; install replaces and uninstall
# removes only those files (or the links to trees in INSTALL_LIB that earlier versions of this
# script made). A kubectl-gate from another installer (Homebrew, a package, a copy by hand) is
# left alone, and install stops before downloading anything.
# The script never calls sudo: run it as a user who may write to INSTALL_PATH and INSTALL_LIB.

set -eu

DEFAULT_DOWNLOAD_URL="https://github.com/canary-gate/canary-gate/releases"
GLIBC_FLOOR="2.28"
BIN="kubectl-gate"
SHIM="kubectl_complete-gate"
LEGACY_ALIAS="canary-gate"
RECEIPT=".install-receipt"
PIP_HINT="use 'pip install canary-gate' (Python 3.11 or newer) instead"

# State the exit trap reads: what to remove, and what to put back, if the script stops early.
tmp=""
stage=""
pending=""
rollback=""

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
  uninstall   remove what this script installed (its receipt says what)
  --onefile   install the single-file build (slower to start)

environment: INSTALL_PATH (default /usr/local/bin),
             INSTALL_LIB (default INSTALL_PATH/../lib/kubectl-gate), VERSION (default latest),
             KUBECTL_GATE_ONEFILE=1 (as --onefile),
             KUBECTL_GATE_DOWNLOAD_URL (default https://github.com/canary-gate/canary-gate/releases)
EOF
}

# cleanup: the exit trap. On failure or interrupt, undo a half-made switch; always remove temp files.
cleanup() {
    status=$?
    trap - EXIT INT TERM HUP
    if [ "$status" != 0 ] && [ -n "$rollback" ]; then
        undo_switch
    fi
    [ -z "$stage" ] || rm -rf "$stage"
    [ -z "$tmp" ] || rm -rf "$tmp"
    for leftover in $pending; do
        rm -rf "$leftover"
    done
    if [ "$status" -ge 128 ]; then
        printf 'install.sh: interrupted; temporary files removed\n' >&2
    fi
    exit "$status"
}

detect_os() {
    os=$(uname -s 2>/dev/null || true)
    case "$os" in
        Linux) echo linux ;;
        Darwin) echo darwin ;;
        MINGW* | MSYS* | CYGWIN* | Windows*)
            die "Windows is not supported by this script: use 'kubectl krew install gate' or download kubectl-gate.exe from the releases page" ;;
        *) die "unsupported operating system '$os': download a binary from the releases page or $PIP_HINT" ;;
    esac
}

detect_arch() {
    arch=$(uname -m 2>/dev/null || true)
    case "$arch" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "unsupported architecture '$arch' (supported: amd64, arm64): $PIP_HINT" ;;
    esac
    # An x86_64 shell under Rosetta on Apple silicon: install the native arm64 binary.
    if [ "$1" = darwin ] && [ "$arch" = amd64 ]; then
        if [ "$(sysctl -n hw.optional.arm64 2>/dev/null || true)" = 1 ]; then
            arch=arm64
        fi
    fi
    echo "$arch"
}

# glibc_version: "2.36", or nothing when it cannot be told.
glibc_version() {
    v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '$1 == "glibc" { print $2 }' || true)
    if [ -z "$v" ] && command -v ldd >/dev/null 2>&1; then
        v=$(ldd --version 2>&1 | sed -n '1s/.* \([0-9][0-9]*\.[0-9][0-9]*\)$/\1/p' || true)
    fi
    echo "$v"
}

# version_below A B: is MAJOR.MINOR A older than B?
version_below() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, "."); split(b, y, ".")
        exit !((x[1] + 0 < y[1] + 0) || (x[1] + 0 == y[1] + 0 && x[2] + 0 < y[2] + 0))
    }'
}

# check_libc OS: the PyInstaller binaries are built on glibc 2.28 (the manylinux_2_28 base) and
# need that or newer; musl (Alpine) cannot run them at all.
check_libc() {
    [ "$1" = linux ] || return 0
    if { command -v ldd >/dev/null 2>&1 && ldd --version 2>&1 | grep -qi musl; } \
        || ls /lib/ld-musl-* >/dev/null 2>&1; then
        die "this system uses musl libc (Alpine?) and the prebuilt binaries need glibc $GLIBC_FLOOR or newer: $PIP_HINT; nothing was downloaded"
    fi
    libc=$(glibc_version)
    if [ -z "$libc" ]; then
        warn "cannot tell this system's glibc version; the binaries need glibc $GLIBC_FLOOR or newer"
    elif version_below "$libc" "$GLIBC_FLOOR"; then
        die "this system has glibc $libc and the prebuilt binaries need glibc $GLIBC_FLOOR or newer (RHEL 8, Debian 10, Ubuntu 18.10 and later): $PIP_HINT; nothing was downloaded"
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

# lib_dir BINDIR: where the onedir trees and the receipt go (INSTALL_LIB, else BINDIR/../lib/kubectl-gate).
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

# tree_of PATH: the installed tree the link PATH points into, if it is one.
tree_of() {
    if [ -L "$1" ]; then
        target=$(readlink "$1" 2>/dev/null || true)
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

# receipt_says PATH: the entry the receipt keeps for PATH ("link TARGET" or "file SHA256"), if any.
receipt_says() {
    [ -f "$lib/$RECEIPT" ] || return 0
    awk -v p="$1" '$1 != "#" && $2 == p { print $1, $3; exit }' "$lib/$RECEIPT"
}

# ours PATH: did this script install what is at PATH now (and has nobody replaced it since)?
ours() {
    entry=$(receipt_says "$1")
    case "$entry" in
        "link "*) [ -L "$1" ] && [ "$(readlink "$1")" = "${entry#link }" ] ;;
        "file "*) [ -f "$1" ] && [ ! -L "$1" ] && [ "$(sha256_of "$1")" = "${entry#file }" ] ;;
        *) # made before receipts existed: a link to one of our trees, and the shim beside it
            [ -n "$(tree_of "$1")" ] || {
                [ "${1##*/}" = "$SHIM" ] && [ ! -f "$lib/$RECEIPT" ] && [ -f "$1" ] \
                    && [ -n "$(tree_of "${1%/*}/$BIN")" ] && grep -q "^exec $BIN __complete" "$1"
            } ;;
    esac
}

# describe PATH: what PATH is, for a message about a file we leave alone.
describe() {
    if [ -L "$1" ]; then
        echo "a link to $(readlink "$1")"
    elif [ -d "$1" ]; then
        echo "a directory"
    else
        echo "a file this script's receipt in $lib does not list"
    fi
}

# check_foreign DIR: stop if DIR holds a kubectl-gate or shim that another installer owns.
check_foreign() {
    for name in "$BIN" "$SHIM"; do
        path="$1/$name"
        if { [ -e "$path" ] || [ -L "$path" ]; } && ! ours "$path"; then
            die "$path was not installed by this script ($(describe "$path")): left alone, nothing was downloaded. Remove it with the tool that installed it (e.g. 'brew uninstall canary-gate'), or set INSTALL_PATH to another directory"
        fi
    done
}

# remove_tree TREE: delete an installed tree.
remove_tree() {
    is_tree "$1" || return 0
    rm -rf "$1" || die "cannot remove $1: run as a user who may write to ${1%/*} (e.g. with sudo)"
    say "removed $1"
}

# prune_lib LIB KEEP: remove every installed tree in LIB except LIB/KEEP and the leftovers of an
# interrupted run of an older version of this script; then LIB itself if empty.
prune_lib() {
    for tree in "$1"/v* "$1"/.v*.tmp.* "$1"/.v*.old.* "$1"/.stage.* "$1"/.receipt.tmp.*; do
        [ -e "$tree" ] || continue
        [ "$tree" != "$1/$2" ] || continue
        case "${tree##*/}" in
            .*) rm -rf "$tree" && say "removed the leftover $tree" ;;
            *)
                if is_tree "$tree"; then
                    remove_tree "$tree"
                else
                    warn "left $tree alone: it is not a kubectl-gate tree"
                fi
                ;;
        esac
    done
    rmdir "$1" 2>/dev/null || true
}

# legacy_alias DIR: earlier versions of this script linked canary-gate -> kubectl-gate; that name
# is the Go original's command (its Homebrew cask), so the link goes.
legacy_alias() {
    if [ -L "$1/$LEGACY_ALIAS" ] && [ "$(readlink "$1/$LEGACY_ALIAS")" = "$BIN" ]; then
        rm -f "$1/$LEGACY_ALIAS" && say "removed $1/$LEGACY_ALIAS (a link to $BIN made by an earlier install.sh)"
    fi
    return 0
}

do_uninstall() {
    dir=$1
    lib=$(lib_dir "$dir")
    tree=$(tree_of "$dir/$BIN")
    if [ -n "$tree" ] && [ ! -f "$lib/$RECEIPT" ]; then
        lib=${tree%/*}  # the link says where the trees are (INSTALL_LIB not given again)
    fi
    removed=0
    mine=""  # decided for both before removing either: the shim of an old install is known by the link
    for name in "$BIN" "$SHIM"; do
        path="$dir/$name"
        [ -e "$path" ] || [ -L "$path" ] || continue
        if ours "$path"; then
            mine="$mine $path"
        else
            warn "left $path alone: it was not installed by this script ($(describe "$path"))"
        fi
    done
    for path in $mine; do
        rm -f "$path" || die "cannot remove $path: run as a user who may write to $dir (e.g. with sudo)"
        say "removed $path"
        removed=1
    done
    legacy_alias "$dir"
    if [ -d "$lib" ]; then
        [ ! -f "$lib/$RECEIPT" ] || { rm -f "$lib/$RECEIPT"; removed=1; }
        if [ -n "$(ls -A "$lib" 2>/dev/null)" ]; then
            removed=1
        fi
        prune_lib "$lib" ""
    fi
    if [ "$removed" = 0 ]; then
        say "nothing to remove in $dir (installed elsewhere? set INSTALL_PATH, and INSTALL_LIB if you set it, as for the install)"
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

# put NEW PATH: move NEW over PATH, keeping what was at PATH as PATH.old.<pid> for undo_switch.
put() {
    if [ -e "$2" ] || [ -L "$2" ]; then
        mv -f "$2" "$2.old.$$" || die "cannot replace $2"
        rollback="$rollback restore:$2"
    else
        rollback="$rollback remove:$2"
    fi
    mv -f "$1" "$2" || die "cannot write $2"
}

# undo_switch: put back everything put() replaced (newest first), then drop the new tree.
undo_switch() {
    steps=""
    for step in $rollback; do
        steps="$step $steps"
    done
    for step in $steps; do
        case "$step" in
            restore:*) path=${step#restore:}; rm -rf "$path"; mv -f "$path.old.$$" "$path" ;;
            remove:*) rm -rf "${step#remove:}" ;;
        esac
    done
    rollback=""
    printf 'install.sh: put the previous installation back\n' >&2
}

# finish_switch: the new installation runs; drop what put() kept for undo_switch.
finish_switch() {
    for step in $rollback; do
        case "$step" in
            restore:*) rm -rf "${step#restore:}.old.$$" ;;
        esac
    done
    rollback=""
}

do_install() {
    dir=$1
    onefile=$2
    os=$(detect_os)
    arch=$(detect_arch "$os")
    check_libc "$os"
    lib=$(lib_dir "$dir")
    check_foreign "$dir"
    base=${KUBECTL_GATE_DOWNLOAD_URL:-$DEFAULT_DOWNLOAD_URL}
    base=${base%/}

    tmp=$(mktemp -d 2>/dev/null || mktemp -d -t kubectl-gate)

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
    ensure_dir "$lib" INSTALL_LIB
    old_tree=$(tree_of "$dir/$BIN")
    receipt="$lib/.receipt.tmp.$$"
    pending="$receipt"
    printf '# kubectl-gate %s, installed by install.sh: uninstall removes only these\n' "$tag" >"$receipt"

    if [ -n "$kind" ]; then
        # Copy beside the target, then rename: a running kubectl-gate never sees a half-written tree.
        stage="$lib/.stage.$$"
        mkdir "$stage" || die "cannot write to $lib"
        for name in "$BIN" _internal LICENSE; do
            [ -e "$tmp/x/$name" ] || continue
            cp -R "$tmp/x/$name" "$stage/" || die "cannot write $stage/$name"
        done
        chmod -R u+rwX,go+rX,go-w "$stage"
        chmod 0755 "$stage/$BIN"
        put "$stage" "$lib/$tag"
        stage=""
        ln -s "$lib/$tag/$BIN" "$dir/.$BIN.tmp.$$" || die "cannot write $dir/$BIN"
        pending="$pending $dir/.$BIN.tmp.$$"
        put "$dir/.$BIN.tmp.$$" "$dir/$BIN"
        printf 'link %s %s\n' "$dir/$BIN" "$lib/$tag/$BIN" >>"$receipt"
        printf 'tree %s\n' "$lib/$tag" >>"$receipt"
        say "installed $lib/$tag, linked from $dir/$BIN"
        files=$SHIM
    else
        files="$BIN $SHIM"
    fi
    for name in $files; do
        [ -f "$tmp/x/$name" ] || continue
        cp "$tmp/x/$name" "$dir/.$name.tmp.$$" || die "cannot write $dir/$name"
        pending="$pending $dir/.$name.tmp.$$"
        chmod 0755 "$dir/.$name.tmp.$$"
        put "$dir/.$name.tmp.$$" "$dir/$name"
        printf 'file %s %s\n' "$dir/$name" "$(sha256_of "$dir/$name")" >>"$receipt"
        say "installed $dir/$name"
    done

    # The installed command must run here (a noexec mount, a missing library, a wrong build).
    if ! out=$("$dir/$BIN" version --client 2>&1); then
        die "$dir/$BIN does not run on this system: $out
install.sh: the binaries need glibc $GLIBC_FLOOR or newer and a filesystem that allows executing files; $PIP_HINT"
    fi
    mv -f "$receipt" "$lib/$RECEIPT" || die "cannot write $lib/$RECEIPT"
    finish_switch
    pending=""
    say "$out"

    # The tree the link pointed to before (another version, another INSTALL_LIB, or now --onefile).
    if [ -n "$old_tree" ] && { [ -z "$kind" ] || [ "$old_tree" != "$lib/$tag" ]; }; then
        remove_tree "$old_tree"
        rmdir "${old_tree%/*}" 2>/dev/null || true
    fi
    keep=
    [ -z "$kind" ] || keep=$tag
    prune_lib "$lib" "$keep"
    legacy_alias "$dir"
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
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    dir=${INSTALL_PATH:-/usr/local/bin}
    case "$dir${INSTALL_LIB:-}" in
        *[[:space:]]*) die "INSTALL_PATH and INSTALL_LIB may not contain spaces" ;;
    esac
    if [ "$action" = uninstall ]; then
        do_uninstall "$dir"
    else
        do_install "$dir" "$onefile"
    fi
}

main "$@"
