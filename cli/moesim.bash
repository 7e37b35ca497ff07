# moesim.bash: bash completion for moesim (installed as
# PREFIX/share/bash-completion/completions/moesim; or `source cli/moesim.bash`).
#
# Everything is asked of the binary being completed, so the completion never
# goes stale: commands (`moesim --commands`), subcommands and options (its
# --help texts), policies (`moesim policies --names`), device and model
# profile names (the sections of the profile file `moesim --data-path` finds,
# or of --devices/--models on the line). Other values are files.

# The moesim being completed: the word as typed when it runs (build/moesim),
# else moesim from PATH.
_moesim_bin() {
    local b=${COMP_WORDS[0]}
    [[ $b == */* && -x $b ]] || b=moesim
    printf '%s' "$b"
}

# Section names of an INI file: the profile names.
_moesim_sections() {
    [[ -r $1 ]] && sed -n 's/^[[:space:]]*\[\([^]]*\)\].*/\1/p' "$1"
}

# The value of option $1 earlier on the command line, if any.
_moesim_opt_value() {
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == "$1" ]]; then
            printf '%s' "${COMP_WORDS[i + 1]}"
            return
        elif [[ ${COMP_WORDS[i]} == "$1="* ]]; then
            printf '%s' "${COMP_WORDS[i]#*=}"
            return
        fi
    done
}

# Profile names for --device / --model: from the file given on the line,
# else the file found by moesim's data look-up ($2: its relative path).
_moesim_profiles() {
    local bin=$1 rel=$2 opt=$3 file
    file=$(_moesim_opt_value "$opt")
    [[ -n $file ]] || file=$("$bin" --data-path "$rel" 2>/dev/null)
    _moesim_sections "$file"
}

# Complete the last item of a comma-separated list from the words in $2.
_moesim_list() {
    local cur=$1 words=$2 head=
    [[ $cur == *,* ]] && head=${cur%,*},
    COMPREPLY=($(compgen -P "$head" -W "$words" -- "${cur##*,}"))
    # a spec that continues (uniform:bits=) gets no space after it
    [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[:=] ]] && compopt -o nospace 2>/dev/null
}

_moesim_files() {
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$1"))
}

_moesim() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local bin cmd sub="" help
    bin=$(_moesim_bin)
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "$("$bin" --commands 2>/dev/null) --help --version --commands --data-path" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    [[ $cmd == --data-path ]] && { _moesim_files "$cur"; return; }
    [[ $cmd == -* ]] && return
    help=$("$bin" "$cmd" --help 2>/dev/null)
    # A command with subcommands says so in its usage line (<a|b|...>) and
    # lists each at the start of a line indented by two spaces.
    if [[ $(head -n 1 <<<"$help") == *"<"* ]]; then
        if ((COMP_CWORD == 2)); then
            COMPREPLY=($(compgen -W "$(sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' <<<"$help")" -- "$cur"))
            return
        fi
        sub=${COMP_WORDS[2]}
        help=$("$bin" "$cmd" "$sub" --help 2>/dev/null)
    elif [[ $cmd == plot ]] && ((COMP_CWORD == 2)) && [[ $cur != -* ]]; then
        # figure kinds: the lines under "kinds:" in plot --help
        COMPREPLY=($(compgen -W "$(sed -n '/^kinds:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' <<<"$help")" -- "$cur"))
        return
    fi

    case $prev in
    --policy) _moesim_list "$cur" "$("$bin" policies --names 2>/dev/null)"; return ;;
    --policies) _moesim_list "$cur" "$("$bin" policies --names 2>/dev/null) all"; return ;;
    --device)
        if [[ $cmd == validate ]]; then
            local f
            f=$(_moesim_opt_value --devices)
            _moesim_list "$cur" "$(_moesim_sections "${f:-results/devices.local.ini}")"
        else
            _moesim_list "$cur" "$(_moesim_profiles "$bin" experiments/devices.ini --devices)"
        fi
        return ;;
    --model)
        case $cmd in
        run | sweep | plan) _moesim_list "$cur" "$(_moesim_profiles "$bin" experiments/models.ini --models)" ;;
        *) compopt -o dirnames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
        esac
        return ;;
    --scope) _moesim_list "$cur" "per-layer global"; return ;;
    --prefetch) _moesim_list "$cur" "none gate transition history topn oracle log"; return ;;
    --precision) _moesim_list "$cur" "uniform:bits=16 uniform:bits=8 uniform:bits=4 uniform:bits=3 uniform:bits=2 mlx-tiers hot-cold hobbit"; return ;;
    --on-miss) COMPREPLY=($(compgen -W "wait skip substitute lowbit" -- "$cur")); return ;;
    --split) COMPREPLY=($(compgen -W "uniform adapmoe fate" -- "$cur")); return ;;
    --io) COMPREPLY=($(compgen -W "direct buffered mmap" -- "$cur")); return ;;
    --dtype) COMPREPLY=($(compgen -W "bf16 f32 q8 q4 q3 q2" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "csv jsonl-mixtral jsonl-qwen lcs-csv lcs-oracle" -- "$cur")); return ;;
    --sort) COMPREPLY=($(compgen -W "config id" -- "$cur")); return ;;
    --cold-per-seq) [[ $cmd == plot ]] && { COMPREPLY=($(compgen -W "on off" -- "$cur")); return; } ;;
    esac
    if [[ $cur == -* ]]; then
        # every option the command's --help names
        COMPREPLY=($(compgen -W "$(grep -o -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u)" -- "$cur"))
        return
    fi
    _moesim_files "$cur"
}

complete -F _moesim moesim
