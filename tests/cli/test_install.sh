#!/bin/sh
# test_install.sh: `make install PREFIX=P` into an empty folder gives a moesim
# that finds its data from any working directory (next to the binary, also
# after the tree is moved; else through $MOESIM_DATA), a man page that `man`
# shows, and a bash completion that completes from the installed data.
# The install uses the build the tests run (BUILD=build-san under
# `make test SAN=1`: SAN=1 here too), so it relinks that binary with PREFIX=P
# compiled in; nothing else of the build changes.
MOESIM=${MOESIM:-build/moesim}
BUILD=${BUILD:-$(basename "$(dirname "$MOESIM")")}
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
case $BUILD in
build) san=0 ;;
build-san) san=1 ;;
*) fail install_setup "unknown build folder '$BUILD' (build or build-san)"; exit 0 ;;
esac
root=$(pwd -P)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tmp=$(cd "$tmp" && pwd -P) # /proc/self/exe reports the physical path
unset MOESIM_DATA MOESIM_PLOTS
P=$tmp/prefix
# The parent make's jobserver is not passed to a test: this make runs on its own.
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$root" install PREFIX="$P" SAN=$san >"$tmp/make.out" 2>&1; then
    pass install_make
else
    fail install_make "$(tail -n 20 "$tmp/make.out")"
    exit 0
fi
missing=""
for f in bin/moesim lib/libmoesim.a include/moesim/datadir.h share/moesim/experiments/devices.ini \
    share/moesim/experiments/models.ini share/moesim/experiments/policies.ini share/moesim/plots/hit_rate.gp \
    share/moesim/traces/default.moetrace share/moesim/traces/README.md share/man/man1/moesim.1 \
    share/bash-completion/completions/moesim share/doc/moesim/reference.md; do
    [ -f "$P/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && pass install_files || fail install_files "not installed:$missing"

# From /, the installed binary finds profiles, the experiment file and the
# traces it names, and the plot templates.
out=$(cd / && "$P/bin/moesim" run --trace traces/default.moetrace --capacity 2 --device rtx-3060 \
    --model Mixtral-8x7B --json 2>&1)
ref=$(cd "$root" && "$MOESIM" run --trace traces/default.moetrace --capacity 2 --device rtx-3060 \
    --model Mixtral-8x7B --json 2>&1)
tok() { printf '%s' "$1" | sed -n 's/.*"tok_s":\([0-9.e+-]*\).*/\1/p'; }
if [ -n "$(tok "$out")" ] && [ "$(tok "$out")" = "$(tok "$ref")" ]; then pass install_run_from_root
else fail install_run_from_root "from /: $out; in the checkout: tok_s $(tok "$ref")"; fi
if (cd / && "$P/bin/moesim" sweep experiments/policies.ini --shard 1/20 --db "$tmp/p.db" --jobs 2) >"$tmp/out" 2>&1 &&
   grep -q "sweep: 14 runs: 14 ran" "$tmp/out"; then pass install_sweep_from_root
else fail install_sweep_from_root "$(cat "$tmp/out")"; fi
if ! command -v gnuplot >/dev/null; then
    fail install_plot_from_root "gnuplot not installed (sudo make deps)"
elif (cd / && "$P/bin/moesim" plot hit-rate --db "$tmp/p.db" -o "$tmp/h.png") >"$tmp/out" 2>&1 &&
     [ "$(head -c 4 "$tmp/h.png" | od -An -c | tr -d ' ')" = '211PNG' ]; then
    pass install_plot_from_root
else fail install_plot_from_root "$(cat "$tmp/out")"; fi

# The man page, through MANPATH.
if ! command -v man >/dev/null; then
    fail install_man "man is not installed (Debian package man-db: sudo make deps)"
elif MANPATH="$P/share/man" man moesim >"$tmp/man.txt" 2>"$tmp/man.err" &&
     grep -q "moesim - replay Mixture-of-Experts" "$tmp/man.txt" && grep -q "MOESIM_DATA" "$tmp/man.txt" &&
     [ "$(MANPATH="$P/share/man" man -w moesim)" = "$P/share/man/man1/moesim.1" ]; then
    pass install_man
else fail install_man "$(cat "$tmp/man.err"; head -n 5 "$tmp/man.txt")"; fi

# The completion, sourced as bash-completion would, asks the installed binary.
complete_words() { # words... : the completions of the last word, one line
    (cd / && bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _moesim; echo "${COMPREPLY[*]}"' \
        _ "$P/share/bash-completion/completions/moesim" "$@")
}
c1=$(complete_words "$P/bin/moesim" run --device "")
c2=$(complete_words "$P/bin/moesim" sweep --policies lru,s)
c3=$(complete_words "$P/bin/moesim" re)
c4=$(complete_words "$P/bin/moesim" run --prec)
if [ "$c1" = "apple-m1-ssd apple-m2-max-ssd t4 rtx-3060 rtx-3080-mobile a100-sxm nvme-cpu" ] &&
   [ "$c2" = "lru,s3fifo lru,sieve" ] && [ "$c3" = "results regress reproduce" ] && [ "$c4" = "--precision" ]; then
    pass install_completion
else fail install_completion "devices '$c1', policies '$c2', commands '$c3', options '$c4'"; fi

# Moved elsewhere, the tree still finds its own data (next to the binary; the
# PREFIX compiled in no longer exists) ...
mv "$P" "$tmp/moved"
out=$(cd / && "$tmp/moved/bin/moesim" --data-path 2>&1)
if [ "$out" = "$tmp/moved/share/moesim" ] &&
   (cd / && "$tmp/moved/bin/moesim" run --trace traces/default.moetrace --capacity 2 --device t4 \
       --model Mixtral-8x7B) >"$tmp/out" 2>&1; then
    pass install_relocated
else fail install_relocated "--data-path: '$out'; $(cat "$tmp/out")"; fi
# ... and a binary copied alone finds nothing, says where it looked, and
# finds everything through $MOESIM_DATA.
mkdir "$tmp/lone" && cp "$tmp/moved/bin/moesim" "$tmp/lone/"
(cd / && "$tmp/lone/moesim" run --trace "$tmp/moved/share/moesim/traces/default.moetrace" --capacity 2 \
    --device t4 --model Mixtral-8x7B) >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "experiments/devices.ini: .*looked in the working directory, then nowhere else (no data folder: set MOESIM_DATA)" "$tmp/out" &&
   (cd / && MOESIM_DATA="$tmp/moved/share/moesim" "$tmp/lone/moesim" run --trace traces/default.moetrace \
       --capacity 2 --device t4 --model Mixtral-8x7B) >"$tmp/out2" 2>&1; then
    pass install_moesim_data
else fail install_moesim_data "exit $rc: $(cat "$tmp/out" "$tmp/out2" 2>/dev/null)"; fi
