#!/usr/bin/env bash
# Scale check: login and auth/me latency with 1,000 vs 1,000,000 users in the
# store, plus the store's file size and Caddy's RSS. Loopback only.
#
#   bash bench/scale.sh               # ~2 minutes (seeding 1M users takes ~15 s)
#   ROUNDS=9 ROUND=2s bash bench/scale.sh
#   PORT=9411 bash bench/scale.sh     # the servers use PORT and PORT+1 (default 9311)
#
# Both stores are seeded first and served by two Caddy processes at once;
# each round measures both, in alternating order, so that the drift of a
# shared machine's speed hits both sizes alike. Each ratio is taken within a
# round and reported as the median (and range) over the rounds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
SMALL=1000
BIG=${BIG:-1000000}
ROUND=${ROUND:-3s}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-9311}
work=$(mktemp -d)
declare -A pid
trap 'stop_pids "${pid[@]}"; rm -rf "$work"' EXIT

go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/load" ./bench/load
go build -o "$work/seed" ./bench/seed

declare -A base email tok
port=$PORT
for n in "$SMALL" "$BIG"; do
	db="$work/users-$n.db"
	"$work/seed" -db "$db" -n "$n" >&2
	# Write the seeded file out now: the kernel flushing hundreds of MiB in
	# the background would slow the first rounds of the big store.
	sync "$db"
	mkdir -p "$work/$n"
	cat >"$work/$n/Caddyfile" <<CADDY
{
	admin off
	http_port $port
	auto_https off
	grace_period 1s
	log {
		level ERROR
	}
	xano {
		storage bbolt $db
		rate_limit off
	}
}
http://127.0.0.1:$port {
	xano_auth /api:*
}
CADDY
	XDG_DATA_HOME="$work/$n/data" XDG_CONFIG_HOME="$work/$n/config" "$work/caddy" run --config "$work/$n/Caddyfile" --adapter caddyfile >"$work/$n/caddy.log" 2>&1 &
	pid[$n]=$!
	base[$n]="http://127.0.0.1:$port"
	for _ in $(seq 50); do curl -fsS -o /dev/null "${base[$n]}/api:x/auth/me" -w '%{http_code}' 2>/dev/null | grep -q 401 && break; sleep 0.2; done
	# the user in the middle of the id range, so lookups are not all cache-hot at one end
	email[$n]="bench$((n / 2))@example.com"
	tok[$n]=$(curl -fsS -X POST "${base[$n]}/api:x/auth/login" -H 'Content-Type: application/json' \
		-d "{\"email\":\"${email[$n]}\",\"password\":\"secret123\"}" | sed 's/.*"authToken":"\([^"]*\)".*/\1/')
	port=$((port + 1))
done

declare -A LP50 LP99 MP50 MP99
declare -a R_LOGIN R_ME
measure() { # n round
	local login me
	login=$("$work/load" -url "${base[$1]}/api:x/auth/login" -method POST -c 1 -d "$ROUND" -body "{\"email\":\"${email[$1]}\",\"password\":\"secret123\"}")
	me=$("$work/load" -url "${base[$1]}/api:x/auth/me" -c 8 -d "$ROUND" -H "Authorization: Bearer ${tok[$1]}")
	echo "$1 users, round $2: login $login; me $me" >&2
	LP50[$1,$2]=$(field p50_ms "$login") LP99[$1,$2]=$(field p99_ms "$login")
	MP50[$1,$2]=$(field p50_ms "$me") MP99[$1,$2]=$(field p99_ms "$me")
}
for r in $(seq "$ROUNDS"); do
	if ((r % 2)); then measure "$SMALL" "$r"; measure "$BIG" "$r"; else measure "$BIG" "$r"; measure "$SMALL" "$r"; fi
	R_LOGIN+=("$(ratio "${LP50[$BIG,$r]}" "${LP50[$SMALL,$r]}")") R_ME+=("$(ratio "${MP50[$BIG,$r]}" "${MP50[$SMALL,$r]}")")
done

printf '%-10s %12s %12s %12s %12s %10s %10s\n' users "login p50" "login p99" "me p50" "me p99" "db MiB" "RSS MiB"
for n in "$SMALL" "$BIG"; do
	lp50=() lp99=() mp50=() mp99=()
	for r in $(seq "$ROUNDS"); do lp50+=("${LP50[$n,$r]}") lp99+=("${LP99[$n,$r]}") mp50+=("${MP50[$n,$r]}") mp99+=("${MP99[$n,$r]}"); done
	printf '%-10s %12s %12s %12s %12s %10s %10s\n' "$n" "$(median "${lp50[@]}")" "$(median "${lp99[@]}")" \
		"$(median "${mp50[@]}")" "$(median "${mp99[@]}")" "$(du -m "$work/users-$n.db" | cut -f1)" \
		"$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/${pid[$n]}/status")"
done
printf '(medians over %s rounds of %s; login with 1 client, auth/me with 8)\n\n' "$ROUNDS" "$ROUND"
printf '%-34s %7s %12s  %s\n' "ratio $BIG / $SMALL users (p50)" median range target
printf '%-34s %7s %12s  %s\n' "login" "$(median "${R_LOGIN[@]}")" "$(spread "${R_LOGIN[@]}")" "<= 1.10"
printf '%-34s %7s %12s  %s\n' "auth/me" "$(median "${R_ME[@]}")" "$(spread "${R_ME[@]}")" "<= 1.10"
