#!/usr/bin/env bash
# Build the multi-domain byte-level training corpus for the shipped MoE model (models/tinymix)
# from Debian packages installed on this machine.  No network data other than Debian packages.
#
#   bash models/make_corpus.sh            # writes models/corpus/{train,heldout}_<domain>.txt
#
# Domains (4):
#   prose  dictd databases: dict-jargon, dict-foldoc, dict-devil, dict-gcide (.dict.dz = gzip)
#   bible  King James Bible (bible-kjv-text), printed verse by verse by the bible-kjv `bible` program
#   c      two sources: (1) C source files (.c) under tools/ and samples/ of the Linux kernel
#          source tarball of the Debian package linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz:
#          selftests, perf, bpf, usb/vfio/... samples; kernel style, `int main(int argc, char
#          **argv)\n{` is common), fetched with `apt-get download` (not installed), unpacked, .c files
#          extracted with tar, leading SPDX / copyright / licence comments dropped; CAP_C_SRC bytes
#          (2/3 of the domain): function bodies and main() functions, which headers lack.  (An
#          earlier corpus used glibc-source and binutils-source; their GNU style `int\nmain (void)`
#          almost never contains the bytes `int main(`, and the model did not continue that prompt.)
#          (2) C headers under /usr/include (not c++/ nor the near-duplicate per-architecture
#          openssl/archs copies; files with C++ namespace/template/class lines skipped) and example
#          .c files under /usr/share/doc; the rest of CAP_C
#   roff   English man pages /usr/share/man/man*/*.gz (roff source; .so redirects and the
#          non-Debian Google Cloud CLI pages gcloud* skipped)
#
# Held-out: for every source of a domain, the last 2% of its lines (a contiguous slice, never in
# training); heldout_<domain>.txt is the concatenation of those slices in source order.  The roff
# domain and each of the two c sources is a file list in a fixed pseudo-random order, so its
# held-out slice is the last files of that order (c: sources' slice first, then headers').
#
# Determinism: LC_ALL=C, sorted file lists, a fixed seeded shuffle (sort -R with a constant random
# source), fixed byte caps.  The c and roff domains depend on which packages are installed on the
# machine; models/corpus/MANIFEST lists every input file and the sha256 of every output, and a copy
# of the manifest of the corpus the shipped model was trained on is committed as models/corpus.sha256.
set -eu   # no pipefail: `head` closes pipes early on purpose
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${CORPUS_DIR:-$HERE/corpus}"
CAP_PROSE=${CAP_PROSE:-9500000}     # bytes, whole domain
CAP_C=${CAP_C:-9000000}
CAP_C_SRC=${CAP_C_SRC:-6000000}     # of CAP_C: bytes of .c sources from the kernel's tools/ and samples/
CAP_ROFF=${CAP_ROFF:-9000000}
FILE_CAP_C=${FILE_CAP_C:-32768}     # bytes taken from one header / source file at most
FILE_CAP_ROFF=${FILE_CAP_ROFF:-49152}
HELDOUT_PCT=2

PKGS="dict-jargon dict-foldoc dict-devil dict-gcide bible-kjv bible-kjv-text manpages manpages-dev
      libc6-dev linux-libc-dev zlib1g-dev coreutils gzip mawk tar xz-utils"
# source package for the c domain: downloaded (~140 MB) and unpacked into a temporary folder, NOT
# installed (installed source packages can pull in dependencies that add man pages to the roff
# domain or headers to /usr/include)
SRC_PKGS="linux-source-6.1"

need_install=0
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_install=1
done
if [ "$need_install" = 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "make_corpus: installing missing Debian packages" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS >&2
    else
        echo "make_corpus: missing packages; run as root or: apt-get install $PKGS" >&2
        exit 1
    fi
fi

mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
MANIFEST="$OUT/MANIFEST"
: > "$MANIFEST"

# constant "random" source for sort -R: a fixed, seeded shuffle
yes moesim-corpus-seed-1 | head -c 1048576 > "$TMP/seed"
shuffle() { sort -R --random-source="$TMP/seed"; }

# strip NUL bytes (id 0 is the model's bos/eos/pad and must not occur in text) and CRs
clean() { tr -d '\000\r'; }

# split_source SRC DOMAIN: append the first 98% of SRC's lines to train, the rest to heldout
split_source() {
    local src="$1" dom="$2" n cut
    n=$(wc -l < "$src")
    cut=$(( n - n * HELDOUT_PCT / 100 ))
    head -n "$cut" "$src" >> "$OUT/train_$dom.txt"
    tail -n +"$((cut + 1))" "$src" >> "$OUT/heldout_$dom.txt"
}

# keep every STRIDE-th group of GROUP paragraphs (entries), so a capped dictionary spans A..Z
stride_paragraphs() {
    local stride="$1" group="$2"
    awk -v s="$stride" -v g="$group" '
        BEGIN { para = 0 }
        /^$/ { if (!blank) para++; blank = 1; if (int(para / g) % s == 0) print; next }
        { blank = 0; if (int(para / g) % s == 0) print }'
}

for d in prose bible c roff; do : > "$OUT/train_$d.txt"; : > "$OUT/heldout_$d.txt"; done

# ---------------------------------------------------------------- prose
# sizes: jargon 1.4 MB, devil 0.4 MB, foldoc 5.6 MB (every 2nd group), gcide 40 MB (every 9th group)
echo "make_corpus: prose" >&2
zcat /usr/share/dictd/jargon.dict.dz | clean > "$TMP/jargon"
zcat /usr/share/dictd/devil.dict.dz  | clean > "$TMP/devil"
zcat /usr/share/dictd/foldoc.dict.dz | clean | stride_paragraphs 2 100 > "$TMP/foldoc"
zcat /usr/share/dictd/gcide.dict.dz  | clean | stride_paragraphs 9 200 > "$TMP/gcide"
total=0
for s in jargon devil foldoc gcide; do total=$((total + $(wc -c < "$TMP/$s"))); done
for s in jargon devil foldoc gcide; do
    f="$TMP/$s"
    if [ "$total" -gt "$CAP_PROSE" ]; then      # shrink every source by the same factor
        keep=$(( $(wc -c < "$f") * CAP_PROSE / total ))
        head -c "$keep" "$f" | awk '{ print }' > "$f.cap"   # cut at a byte, end with a newline
        mv "$f.cap" "$f"
    fi
    echo "prose-source $s /usr/share/dictd/$s.dict.dz $(wc -c < "$f")" >> "$MANIFEST"
    split_source "$f" prose
done

# ---------------------------------------------------------------- bible
echo "make_corpus: bible" >&2
# `bible -f` prints one verse per line ("Ge1:1 In the beginning ..."), the whole book for a range
bible -f "Gen1:1-Rev22:21" | clean | grep -v '^$' > "$TMP/bible"
echo "bible-source /usr/lib/bible.data $(wc -c < "$TMP/bible")" >> "$MANIFEST"
split_source "$TMP/bible" bible

# ---------------------------------------------------------------- c
echo "make_corpus: c" >&2
# (1) .c sources under tools/ and samples/ of the kernel source tarball (GNU tar; the file list is
#     sorted, then shuffled)
mkdir -p "$TMP/src" "$TMP/debs" "$TMP/pkgroot"
for p in $SRC_PKGS; do
    if [ -z "$(apt-cache madison "$p" 2>/dev/null)" ]; then
        if [ "$(id -u)" = 0 ]; then apt-get update -qq; else
            echo "make_corpus: apt-cache knows no $p; run apt-get update as root" >&2; exit 1; fi
    fi
    (cd "$TMP/debs" && apt-get download -qq "$p" >&2)
done
for deb in "$TMP"/debs/*.deb; do
    echo "c-src-package $(basename "$deb") $(sha256sum < "$deb" | cut -c1-64)" >> "$MANIFEST"
    dpkg-deb -x "$deb" "$TMP/pkgroot"
done
for tb in "$TMP"/pkgroot/usr/src/linux-source-6.1.tar.xz; do
    [ -f "$tb" ] || { echo "make_corpus: missing $tb" >&2; exit 1; }
    top=$(basename "$tb" .tar.xz)          # the tarball's top folder: linux-source-6.1/
    tar -xJf "$tb" -C "$TMP/src" --wildcards "$top/tools/*.c" "$top/samples/*.c" \
        --no-same-owner --no-same-permissions
done
rm -rf "$TMP/debs" "$TMP/pkgroot"
(cd "$TMP/src" && find . -type f -name '*.c' | sed 's#^\./##') | sort | shuffle > "$TMP/csrc.list"
# drop leading `//` comment lines and a leading comment block that hold an SPDX tag / copyright /
# licence notice (the same GPL text heads most files and would crowd out code)
strip_licence() {
    awk 'BEGIN { st = 0 }
         st == 0 && /^[[:space:]]*$/ { next }
         st == 0 && /^[[:space:]]*\/\// && /SPDX|[Cc]opyright|License|LICENSE/ { next }
         st == 0 && /^[[:space:]]*\/\*/ { st = 1 }
         st == 0 { st = 2 }
         st == 1 { buf = buf $0 "\n"; if ($0 ~ /\*\//) { if (buf !~ /[Cc]opyright|License|LICENSE/) printf "%s", buf; st = 2 }; next }
         { print }
         END { if (st == 1 && buf !~ /[Cc]opyright|License|LICENSE/) printf "%s", buf }'
}
: > "$TMP/csrc"
while IFS= read -r f; do
    [ "$(wc -c < "$TMP/csrc")" -ge "$CAP_C_SRC" ] && break
    clean < "$TMP/src/$f" | strip_licence | sed '/./,$!d' | head -c "$FILE_CAP_C" | awk '{ print }' > "$TMP/one"
    [ -s "$TMP/one" ] || continue
    { printf '/* %s */\n' "$f"; cat "$TMP/one"; printf '\n'; } >> "$TMP/csrc"
    echo "c-src $f" >> "$MANIFEST"
done < "$TMP/csrc.list"
head -c "$CAP_C_SRC" "$TMP/csrc" | awk '{ print }' > "$TMP/csrc.cap"
split_source "$TMP/csrc.cap" c
CAP_C_HDR=$(( CAP_C - $(wc -c < "$TMP/csrc.cap") ))

# (2) headers under /usr/include and example .c files under /usr/share/doc
CXX_RE='^[[:space:]]*(namespace[[:space:]]+[A-Za-z_{]|template[[:space:]]*<|class[[:space:]]+[A-Za-z_][A-Za-z0-9_]*[[:space:]]*(final[[:space:]]*)?[:{])'
{
    find /usr/share/doc -type f \( -name '*.c' -o -name '*.c.gz' \) 2>/dev/null
    find /usr/include \( -path /usr/include/c++ -o -path '*/openssl/archs' \) -prune -o -type f -name '*.h' -print
} | sort | shuffle > "$TMP/c.list"
: > "$TMP/c"
while IFS= read -r f; do
    [ "$(wc -c < "$TMP/c")" -ge "$CAP_C_HDR" ] && break
    case "$f" in *.gz) zcat -- "$f" ;; *) cat -- "$f" ;; esac | clean | head -c "$FILE_CAP_C" \
        | awk '{ print }' > "$TMP/one"
    [ -s "$TMP/one" ] || continue
    # C only: skip C++ headers (llvm, v8, ...), recognised by namespace / template / class lines
    grep -qE "$CXX_RE" "$TMP/one" && continue
    { printf '/* %s */\n' "$f"; cat "$TMP/one"; printf '\n'; } >> "$TMP/c"
    echo "c-file $f" >> "$MANIFEST"
done < "$TMP/c.list"
head -c "$CAP_C_HDR" "$TMP/c" | awk '{ print }' > "$TMP/c.cap"
split_source "$TMP/c.cap" c

# ---------------------------------------------------------------- roff
echo "make_corpus: roff" >&2
find /usr/share/man -mindepth 2 -maxdepth 2 -path '/usr/share/man/man*/*' -type f -name '*.gz' \
    ! -name 'gcloud*' | sort | shuffle > "$TMP/roff.list"
: > "$TMP/roff"
while IFS= read -r f; do
    [ "$(wc -c < "$TMP/roff")" -ge "$CAP_ROFF" ] && break
    zcat -- "$f" 2>/dev/null | clean | head -c "$FILE_CAP_ROFF" | awk '{ print }' > "$TMP/one" || true
    [ -s "$TMP/one" ] || continue
    head -n 1 "$TMP/one" | grep -q '^\.so ' && continue          # redirect to another page
    cat "$TMP/one" >> "$TMP/roff"
    echo "roff-file $f" >> "$MANIFEST"
done < "$TMP/roff.list"
head -c "$CAP_ROFF" "$TMP/roff" | awk '{ print }' > "$TMP/roff.cap"
split_source "$TMP/roff.cap" roff

# ---------------------------------------------------------------- manifest
{
    echo "# sizes"
    wc -c "$OUT"/train_*.txt "$OUT"/heldout_*.txt | sed "s#$OUT/##"
    echo "# sha256"
    (cd "$OUT" && sha256sum train_*.txt heldout_*.txt)
} >> "$MANIFEST"
sed -n '/^# sizes/,$p' "$MANIFEST" >&2
