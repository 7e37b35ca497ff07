#!/bin/sh
# test_policies.sh: `moesim policies` lists every registered policy with its
# parameters' defaults and marks the oracles; `moesim policies NAME` prints
# the rule, parameters, oracle status and reference; a bad NAME names the
# close ones. The listed defaults are checked against the canonical name a
# run records (what each policy's create makes of a bare name).
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
"$MOESIM" trace gen -o "$tmp/t.moetrace" --steps 40 --layers 3 --experts 8 --top-k 2 --seq-len 20 --seed 5 \
    >/dev/null 2>&1 || fail policies_setup "trace gen"
"$MOESIM" policies >"$tmp/list" 2>"$tmp/err" || fail policies_list "exit $?"
# the user-facing names: registry.def's C names with '-' for '_'
names=$(sed -n 's/^POLICY(\(.*\))$/\1/p' core/policies/registry.def | tr _ -)
listed_names=$(awk '/^$/ {exit} /^[a-z]/ {print $1}' "$tmp/list")

# 1. every registered policy once, in registry order; its listed defaults =
#    the canonical name a run records
bad=""
[ "$(echo $listed_names)" = "$(echo $names)" ] || bad="listed '$(echo $listed_names)', registry '$(echo $names)'"
for n in $names; do
    listed=$(awk -v n="$n" '$1 == n { getline nx; if (nx ~ /^  +parameters: /) print nx; exit }' "$tmp/list" |
             sed 's/^ *parameters: //; s/; \[.*//; s/, /,/g')
    canon=$("$MOESIM" run --trace "$tmp/t.moetrace" --policy "$n" --capacity 3 --json 2>/dev/null |
            sed 's/.*"policy":"\([^"]*\)".*/\1/')
    want=$n${listed:+:$listed}
    [ "$canon" = "$want" ] || bad="$bad $n(listed '$want', run records '$canon')"
done
[ -z "$bad" ] && pass policies_list_defaults_are_canonical || fail policies_list_defaults_are_canonical "$bad"

# 2. oracles marked: belady always; pin (profile=self) and learned
#    (train=oracle-half) by their defaults; nothing else
marked=$(awk '/^$/ {exit} /^[a-z]/ {n = $1} /\[oracle/ {print n}' "$tmp/list" | tr '\n' ' ')
if [ "$marked" = "belady pin learned " ] && grep -q '^belady  *\[oracle\] offline optimum' "$tmp/list" &&
   grep -q '^  *parameters: n=2, profile=self; \[oracle with profile=self (the default)\]$' "$tmp/list" &&
   grep -q '^  *parameters: train=oracle-half, decay=0.99; \[oracle with train=oracle-half (the default)\]$' "$tmp/list"; then
    pass policies_oracles_marked
else fail policies_oracles_marked "marked: '$marked'"; fi

# 3. one policy: rule paragraph, parameters with range and default, oracle, reference
"$MOESIM" policies pin >"$tmp/pin" 2>&1
rc=$?
if [ $rc = 0 ] && grep -q '^pin: pin the top-n experts' "$tmp/pin" && grep -q '^Rule$' "$tmp/pin" &&
   grep -q '^  Pin each layer' "$tmp/pin" &&
   grep -q '^  n          integer 0..65534, default 2: pinned experts per layer$' "$tmp/pin" &&
   grep -q '^  profile    text, default self: ' "$tmp/pin" &&
   grep -q '^  oracle with profile=self (the default)' "$tmp/pin" &&
   grep -q "^Reference$" "$tmp/pin" && grep -q "flash-moe" "$tmp/pin" &&
   [ "$(awk 'length > 100' "$tmp/pin" | wc -l)" = 0 ]; then pass policies_show_one
else fail policies_show_one "rc $rc: $(cat "$tmp/pin")"; fi
"$MOESIM" policies belady | grep -q '^  yes, always: it reads the future' &&
"$MOESIM" policies lru | grep -q '^  no: it decides from the past only' &&
"$MOESIM" policies lru | grep -q '^Parameters: none$' && pass policies_show_oracle_status ||
    fail policies_show_oracle_status "belady/lru oracle lines"
# with parameters given, the verdict is for that spec
"$MOESIM" policies pin:profile=other.moetrace | grep -q '^  pin:profile=other.moetrace: not an oracle$' &&
"$MOESIM" policies learned:decay=0.5 | grep -q '^  learned:decay=0.5: an oracle$' &&
    pass policies_show_spec_oracle || fail policies_show_spec_oracle "spec verdicts"

# 4. every policy has its own rule text and a reference
bad=""
for n in $names; do
    "$MOESIM" policies "$n" >"$tmp/one" 2>&1 || { bad="$bad $n(exit)"; continue; }
    rule=$(awk '/^Rule$/ {r = 1; next} /^$/ {r = 0} r' "$tmp/one" | wc -w)
    ref=$(awk '/^Reference$/ {r = 1; next} r' "$tmp/one" | wc -w)
    [ "$rule" -ge 20 ] && [ "$ref" -ge 3 ] || bad="$bad $n(rule $rule words, reference $ref)"
done
[ -z "$bad" ] && pass policies_all_documented || fail policies_all_documented "$bad"

# 5. a bad name: exit 2, nothing on stdout, the close names
"$MOESIM" policies lur >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && [ ! -s "$tmp/out" ] && grep -q "^moesim policies: unknown policy 'lur'; close: lru (known: lru, fifo" "$tmp/err" &&
    pass policies_unknown_close || fail policies_unknown_close "rc $rc: $(cat "$tmp/err")"
"$MOESIM" policies stale 2>&1 | grep -q "close: least-stale (" && "$MOESIM" policies s3-fifo 2>&1 | grep -q "close: fifo, s3fifo (" &&
    pass policies_unknown_close_substring || fail policies_unknown_close_substring "$("$MOESIM" policies stale 2>&1)"
"$MOESIM" policies zzzz 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "^moesim policies: unknown policy 'zzzz' (known: lru, fifo, " "$tmp/err" &&
    pass policies_unknown_far || fail policies_unknown_far "rc $rc: $(cat "$tmp/err")"
"$MOESIM" policies --help | grep -q "^usage: moesim policies \[NAME" && "$MOESIM" policies a b 2>/dev/null
[ $? = 2 ] && pass policies_usage || fail policies_usage "--help or two arguments"
