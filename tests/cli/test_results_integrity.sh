#!/bin/sh
# test_results_integrity.sh: the results store checks itself (issue 15 item 3):
# read-only media (0444 file in a 0555 directory, read as a non-root user, or
# the immutable path forced otherwise), a page-corrupted database refused by
# list and sweep with a "damaged" message, `results check` and `results recover`.
MOESIM=${MOESIM:-build/moesim}
dir=$(mktemp -d /tmp/moesim-integrity-XXXXXX)
trap 'chmod -R u+w "$dir" 2>/dev/null; rm -rf "$dir"' EXIT
pass() { echo "PASS $1"; }
failed=0
fail() { echo "FAIL $1: $2"; failed=1; }

{
    echo "step,seq,token,layer,slot,expert,weight"
    s=0
    for e in 0 1 0 2 1 0; do echo "$s,0,$s,0,0,$e,1"; s=$((s + 1)); done
} >"$dir/t.csv"
T=$dir/t.csv
DB=$dir/r.db
"$MOESIM" sweep --trace "$T" --policies lru,fifo --capacities 2:3 --db "$DB" >"$dir/out" 2>&1 ||
    fail integrity_sweep "$(cat "$dir/out")"

# --help of the new subcommands
for c in check recover; do
    "$MOESIM" results $c --help >"$dir/help" 2>&1 && grep -q usage "$dir/help" && pass "integrity_help_$c" ||
        fail "integrity_help_$c" "$(cat "$dir/help")"
done

# A sound database checks ok.
"$MOESIM" results check --db "$DB" >"$dir/out" 2>&1 && grep -q ": ok$" "$dir/out" && pass integrity_check_ok ||
    fail integrity_check_ok "$(cat "$dir/out")"

# Read-only copy: 0444 file in a 0555 directory (no -wal/-shm can be made).
mkdir "$dir/ro"
cp "$DB" "$dir/ro/r.db"
chmod 0444 "$dir/ro/r.db"
chmod 0555 "$dir/ro" "$dir"
as_user() { "$@"; }
how="as $(id -un)"
if [ "$(id -u)" = 0 ]; then
    if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null &&
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups test -r "$dir/ro/r.db" 2>/dev/null &&
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups test -x "$MOESIM" 2>/dev/null; then
        as_user() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
        how="as nobody"
    else
        how="as root (immutable path not forced by permissions)"
    fi
fi
as_user "$MOESIM" results list --db "$dir/ro/r.db" >"$dir/list" 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c ' done$' "$dir/list")" -eq 4 ] && [ ! -e "$dir/ro/r.db-shm" ]; then
    pass "integrity_readonly_list ($how)"
else fail integrity_readonly_list "$how: exit $rc, $(cat "$dir/list" "$dir/err")"; fi
as_user "$MOESIM" results export --db "$dir/ro/r.db" --csv >"$dir/csv" 2>"$dir/err"
[ $? -eq 0 ] && [ "$(wc -l <"$dir/csv")" -eq 5 ] && pass "integrity_readonly_export ($how)" ||
    fail integrity_readonly_export "$how: $(cat "$dir/err")"
as_user "$MOESIM" results check --db "$dir/ro/r.db" >"$dir/out" 2>&1 && grep -q ": ok$" "$dir/out" &&
    pass "integrity_readonly_check ($how)" || fail integrity_readonly_check "$how: $(cat "$dir/out")"
chmod 0755 "$dir"

# Page corruption: 32 bytes of 0xff at the start of the cell content area of
# the runs table's page (its rows), found from the b-tree page header.
ps=$(sqlite3 "$DB" 'pragma page_size')
root=$(sqlite3 "$DB" "SELECT rootpage FROM sqlite_master WHERE name = 'runs'")
hdr=$((ps * (root - 1)))
cstart=$(od -An -tu1 -j $((hdr + 5)) -N2 "$DB" | awk '{print $1 * 256 + $2}')
C=$dir/c.db
cp "$DB" "$C"
head -c 32 /dev/zero | tr '\000' '\377' | dd of="$C" bs=1 seek=$((hdr + cstart)) conv=notrunc 2>/dev/null
"$MOESIM" results list --db "$C" >"$dir/list" 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "$C: the database is damaged" "$dir/err" && grep -q "results check" "$dir/err" &&
    [ ! -s "$dir/list" ]; then pass integrity_corrupt_list
else fail integrity_corrupt_list "exit $rc: $(cat "$dir/list" "$dir/err")"; fi
sum0=$(cksum <"$C")
"$MOESIM" sweep --trace "$T" --policies lru --capacities 4 --db "$C" >"$dir/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "$C: the database is damaged" "$dir/out" && [ "$(cksum <"$C")" = "$sum0" ]; then
    pass integrity_corrupt_sweep
else fail integrity_corrupt_sweep "exit $rc: $(cat "$dir/out")"; fi
"$MOESIM" results check --db "$C" >"$dir/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "tree page $root" "$dir/out" && pass integrity_corrupt_check ||
    fail integrity_corrupt_check "exit $rc: $(cat "$dir/out")"

# Recover: a new database that passes the check and lists the surviving runs.
N=$dir/n.db
"$MOESIM" results recover --db "$C" -o "$N" >"$dir/out" 2>&1
rc=$?
"$MOESIM" results check --db "$N" >"$dir/out2" 2>&1
rc2=$?
"$MOESIM" results list --db "$N" >"$dir/list" 2>&1
if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$(grep -c ' done$' "$dir/list")" -ge 1 ] &&
    [ -z "$(find "$dir" -name 'n.db.tmp-*')" ] && [ "$(cksum <"$C")" = "$sum0" ]; then pass integrity_recover
else fail integrity_recover "exit $rc/$rc2: $(cat "$dir/out" "$dir/out2" "$dir/list")"; fi
# The recovered database takes the sweep again: lost runs are redone.
"$MOESIM" sweep --trace "$T" --policies lru,fifo --capacities 2:3 --db "$N" >"$dir/out" 2>&1 &&
    [ "$(sqlite3 "$N" "SELECT count(*) FROM runs WHERE status = 'done'")" -eq 4 ] && pass integrity_recover_resweep ||
    fail integrity_recover_resweep "$(cat "$dir/out")"
"$MOESIM" results recover --db "$C" -o "$N" >"$dir/out" 2>&1
[ $? -eq 1 ] && grep -q "exists" "$dir/out" && pass integrity_recover_refuses_existing ||
    fail integrity_recover_refuses_existing "$(cat "$dir/out")"

exit $failed
