# lib.sh: helpers the command-line tests share (sourced from the repository
# root: `. tests/cli/lib.sh`).

# lacks FILE NEEDLES: prints 'needle' for each line of NEEDLES (a newline-
# separated list; empty lines skipped) that FILE does not contain, as a
# fixed string; prints nothing when FILE has them all.
lacks() {
    echo "$2" | while IFS= read -r n; do
        [ -n "$n" ] && ! grep -qF -- "$n" "$1" && printf "'%s' " "$n"
    done
}
