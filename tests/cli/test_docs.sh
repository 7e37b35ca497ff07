#!/bin/sh
# test_docs.sh: the documentation says what the code does. The man page
# renders without a groff warning and every line of its EXAMPLES runs; every
# example a --help text shows runs; no --help text sends the reader into a
# source file; docs/reference.md carries the current --help texts and names
# every key `run --json` prints, every experiment-file [sweep] key and every
# device and model profile key the readers accept; the man page has every
# command.
MOESIM=${MOESIM:-build/moesim}
case $MOESIM in /*) ;; *) MOESIM=$PWD/$MOESIM ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
ref=docs/reference.md
man1=docs/moesim.1

if ! command -v groff >/dev/null; then
    fail docs_man_renders "groff is not installed (Debian package groff-base: sudo make deps)"
elif groff -man -ww -z "$man1" >"$tmp/groff" 2>&1 && [ ! -s "$tmp/groff" ]; then
    pass docs_man_renders
else fail docs_man_renders "$(head -n 5 "$tmp/groff")"; fi

# run_examples NAME FILE [MIN]: run each line of FILE (a command line starting
# with "moesim ") with $MOESIM, in a folder outside the checkout, so that the
# shipped data is found as from any directory; every one must exit 0. All
# examples share the folder, as a reader's would: a sweep into a database an
# earlier example filled skips its runs (and keeps this test short).
mkdir "$tmp/run"
run_examples() {
    n=0 bad=""
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        (cd "$tmp/run" && eval "\"\$MOESIM\" ${line#moesim }") >"$tmp/$1.out" 2>&1 ||
            bad="$bad [$line: $(tail -n 2 "$tmp/$1.out")]"
    done <"$2"
    if [ "$n" -ge "${3:-1}" ] && [ -z "$bad" ]; then pass "$1"
    else fail "$1" "$n examples:${bad:- (too few)}"; fi
}

# The man page's EXAMPLES: lines between .EX and .EE, roff escapes undone,
# lines ending in a backslash joined with the next.
sed -n '/^\.SH EXAMPLES/,/^\.SH/p' "$man1" | sed -n '/^\.EX/,/^\.EE/p' | grep -v '^\.E[XE]' |
    sed 's/\\-/-/g; s/\\e$/\\/' | sed -e ':a' -e '/\\$/N; s/\\\n *//; ta' >"$tmp/man_examples"
run_examples docs_man_examples "$tmp/man_examples" 6

# Every --help: of each command, and of each subcommand a command lists.
"$MOESIM" --help >"$tmp/help.all"
for c in $("$MOESIM" --commands); do
    "$MOESIM" "$c" --help >>"$tmp/help.all"
    "$MOESIM" "$c" --help | head -n 1 | grep -q '<' || continue
    for s in $("$MOESIM" "$c" --help | sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p'); do
        "$MOESIM" "$c" "$s" --help >>"$tmp/help.all"
    done
done
# examples: the lines "  moesim ..." after a line "example:" or "examples:"
awk '/^examples?:$/ { on = 1; next } on && /^  moesim / { sub(/^  /, ""); print; next } { on = 0 }' \
    "$tmp/help.all" >"$tmp/help_examples"
run_examples docs_help_examples "$tmp/help_examples" 3
src=$(grep -nE '(core|cli|sim|backend)/[a-z_]+\.[ch]\b' "$tmp/help.all")
[ -z "$src" ] && pass docs_help_no_source_files || fail docs_help_no_source_files "$src"

# The reference's Commands part is the --help texts of this binary.
cp "$ref" "$tmp/ref.md"
if sh docs/gen-commands.sh "$MOESIM" "$tmp/ref.md" 2>"$tmp/gen.err" && cmp -s "$ref" "$tmp/ref.md"; then
    pass docs_reference_commands
else
    fail docs_reference_commands "docs/reference.md is not the --help of this build; run: sh docs/gen-commands.sh $(
        cat "$tmp/gen.err"; diff "$ref" "$tmp/ref.md" | head -n 6)"
fi

# Every key run --json prints, over configurations that turn on every part.
T=traces/tinymix_session.moetrace
{
    "$MOESIM" run --trace $T --capacity 8 --json
    "$MOESIM" run --trace $T --capacity 30% --device nvme-cpu --prefetch gate:ahead=1,n=2 --speculate \
        --skip cum=0.9,topk_frac=0.3 --precision hot-cold:hot=4 --json
    "$MOESIM" run --trace $T --capacity 8 --on-miss lowbit:bits=2 --json
    "$MOESIM" run --trace $T --capacity 8 --on-miss skip --json
    "$MOESIM" run --trace $T --capacity 8 --model tinymix --device nvme-cpu --stream-dense --json
} >"$tmp/json" 2>&1
python3 -c '
import json, re, sys
keys = set()
for line in open(sys.argv[1]):
    keys |= set(json.loads(line))
print("\n".join(sorted(re.sub(r"^tier_(f32|f16|q8|q4|q3|q2)_", "tier_T_", k) for k in keys)))
' "$tmp/json" >"$tmp/keys" 2>"$tmp/py.err" || fail docs_reference_metrics "$(cat "$tmp/json" "$tmp/py.err")"
undoc=$(while read -r k; do grep -qF "\`$k\`" "$ref" || printf '%s ' "$k"; done <"$tmp/keys")
[ -s "$tmp/keys" ] && [ "$(wc -l <"$tmp/keys")" -ge 60 ] && [ -z "$undoc" ] && pass docs_reference_metrics ||
    fail docs_reference_metrics "$(wc -l <"$tmp/keys") keys; not in $ref: $undoc"

# keys_of FILE ARRAY-START: the strings of a C string array that starts at
# the line matching ARRAY-START, up to its NULL.
keys_of() {
    sed -n "/$2/,/NULL}/p" "$1" | grep -o '"[a-zA-Z0-9_]*"' | tr -d '"'
}
{
    keys_of cli/experiment.c 'known\[\] = {"policies"'
    keys_of core/device_profile.c 'keys\[\] = {"description", "io_channels"'
    keys_of core/device_profile.c 'keys\[\] = {"description", "layers"'
} | sort -u >"$tmp/ini_keys"
undoc=$(while read -r k; do grep -qF "\`$k\`" "$ref" || printf '%s ' "$k"; done <"$tmp/ini_keys")
[ "$(wc -l <"$tmp/ini_keys")" -ge 40 ] && [ -z "$undoc" ] && pass docs_reference_ini_keys ||
    fail docs_reference_ini_keys "$(wc -l <"$tmp/ini_keys") keys; not in $ref: $undoc"

missing=""
for c in $("$MOESIM" --commands); do
    grep -q "^\\\\fB$c\\( \\|\\\\fP\\)" "$man1" || missing="$missing $c"
done
[ -z "$missing" ] && pass docs_man_commands || fail docs_man_commands "not in $man1 COMMANDS:$missing"
