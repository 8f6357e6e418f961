# Helpers shared by the bench/*.sh scripts (sourced, not run).

# stop_pids PID... stops processes this script started: TERM, 2 s for
# Caddy's grace period, then KILL, and reaps them.
stop_pids() {
	local p
	(($#)) || return 0
	for p in "$@"; do kill "$p" 2>/dev/null || true; done
	sleep 2
	for p in "$@"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

# field NAME JSON prints a number field of bench/load's JSON line.
field() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }
# ratio A B prints A/B with two decimals ("n/a" when B is not positive).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
# median and spread of their arguments: the per-round ratios.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s–%s", lo, hi}'; }
# storm_duration ROUND prints how long a login storm runs around a guarded
# round of ROUND: a second longer when ROUND is whole seconds ("4s" → "5s"),
# since the storm starts half a second before the round.
storm_duration() { if [[ $1 =~ ^[0-9]+s$ ]]; then echo "$((${1%s} + 1))s"; else echo "$1"; fi; }
