#!/usr/bin/env bash
# A/B: login (and signup) throughput of two git revisions of this plugin, on
# 127.0.0.1 only. Both are built, served at once by two Caddy processes, and
# loaded one after the other in alternating order, so that the drift of a
# shared machine's speed hits both alike; each ratio B/A is taken within a
# round and reported as the median (range) over the rounds.
#
#   bash bench/ab.sh 537c0f3 HEAD           # ~1 minute
#   ROUNDS=9 ROUND=3s CLIENTS=8 bash bench/ab.sh A B
#   PORT=9421 bash bench/ab.sh A B          # servers on PORT and PORT+1 (default 9321)
#   STORM=1 bash bench/ab.sh A B            # also guarded requests (16 clients) during
#                                           # a login storm (4 × CPUs clients), as in run.sh
#   ENV_B=GOMAXPROCS=3 bash bench/ab.sh HEAD HEAD   # same code, B's Caddy with more
#                                           # environment (ENV_A likewise; space-separated)
#   DBDIR_B=/dev/shm bash bench/ab.sh HEAD HEAD     # same code, B's store in another
#                                           # directory (DBDIR_A likewise): on tmpfs a sync
#                                           # costs nothing, so B/A is what durable writes cost
#
# Revisions are checked out with `git worktree` into a temporary directory;
# the working tree is not touched (uncommitted changes are not measured).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh
if [[ $# -ne 2 ]]; then
	echo "usage: bash bench/ab.sh REV_A REV_B" >&2
	exit 2
fi
ROUND=${ROUND:-4s}
ROUNDS=${ROUNDS:-6}
CLIENTS=${CLIENTS:-$((2 * $(nproc)))}
PORT=${PORT:-9321}

work=$(mktemp -d)
declare -A pid dbdir
cleanup() {
	stop_pids "${pid[@]}"
	for v in a b; do
		if [[ -n "${dbdir[$v]:-}" && "${dbdir[$v]}" != "$work" ]]; then rm -rf "${dbdir[$v]}"; fi
	done
	git worktree remove --force "$work/a" 2>/dev/null || true
	git worktree remove --force "$work/b" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/load" ./bench/load
declare -A rev port
rev[a]=$(git rev-parse --short "$1") rev[b]=$(git rev-parse --short "$2")
port[a]=$PORT port[b]=$((PORT + 1))
for v in a b; do
	echo "building ${rev[$v]}..." >&2
	git worktree add --detach -q "$work/$v" "${rev[$v]}"
	(cd "$work/$v" && go build -o "$work/caddy-$v" ./cmd/caddy)
	dirvar=DBDIR_${v^^}
	dbdir[$v]=$work
	if [[ -n "${!dirvar:-}" ]]; then dbdir[$v]=$(mktemp -d -p "${!dirvar}"); fi
	cat >"$work/Caddyfile-$v" <<CADDY
{
	admin off
	http_port ${port[$v]}
	auto_https off
	grace_period 1s
	log {
		level ERROR
	}
	xano {
		storage bbolt ${dbdir[$v]}/$v.db
		rate_limit off
	}
}
http://127.0.0.1:${port[$v]} {
	xano_auth /api:*
	handle /guarded {
		xano_guard
		respond "ok"
	}
}
CADDY
	extra=ENV_A
	if [[ $v == b ]]; then extra=ENV_B; fi
	# shellcheck disable=SC2086 # ENV_A/ENV_B are lists of VAR=value words
	env XDG_DATA_HOME="$work/data-$v" XDG_CONFIG_HOME="$work/config-$v" ${!extra:-} \
		"$work/caddy-$v" run --config "$work/Caddyfile-$v" --adapter caddyfile >"$work/caddy-$v.log" 2>&1 &
	pid[$v]=$!
done
declare -A token
for v in a b; do
	for _ in $(seq 50); do
		out=$(curl -fsS -X POST "http://127.0.0.1:${port[$v]}/api:b/auth/signup" \
			-H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"secret123"}' 2>/dev/null) && break
		sleep 0.2
	done
	token[$v]=$(sed 's/.*"authToken":"\([^"]*\)".*/\1/' <<<"$out")
done
storm_d=$(storm_duration "$ROUND")

declare -a R_LOGIN R_SIGNUP R_SG R_SP99 R_SL
declare -A LOGIN SIGNUP SG SP99 SL
echo "login and signup, $CLIENTS clients, $ROUNDS rounds of $ROUND, A=${rev[a]} ${ENV_A:-} ${DBDIR_A:+store in $DBDIR_A} B=${rev[b]} ${ENV_B:-} ${DBDIR_B:+store in $DBDIR_B}" >&2
for r in $(seq "$ROUNDS"); do
	order="a b"
	if ((r % 2 == 0)); then order="b a"; fi
	for v in $order; do
		base="http://127.0.0.1:${port[$v]}/api:b/auth"
		l=$("$work/load" -url "$base/login" -method POST -c "$CLIENTS" -d "$ROUND" -body '{"email":"bench@example.com","password":"secret123"}')
		s=$("$work/load" -url "$base/signup" -method POST -c "$CLIENTS" -d "$ROUND" -body "{\"email\":\"u{n}r$r@example.com\",\"password\":\"secret123\"}")
		echo "round $r ${rev[$v]}: login $l; signup $s" >&2
		LOGIN[$v]=$(field rps "$l") SIGNUP[$v]=$(field rps "$s")
		if [[ $(field errors "$l") != 0 || $(field errors "$s") != 0 ]]; then
			echo "errors in round $r on ${rev[$v]}: see above" >&2
		fi
		if [[ "${STORM:-0}" == 1 ]]; then
			# The storm starts first and outlasts the guarded load by a second.
			"$work/load" -url "$base/login" -method POST -c "$((2 * CLIENTS))" -d "$storm_d" \
				-body '{"email":"bench@example.com","password":"secret123"}' >"$work/storm.json" &
			storm=$!
			sleep 0.5
			g=$("$work/load" -url "http://127.0.0.1:${port[$v]}/guarded" -c 16 -d "$ROUND" -H "Authorization: Bearer ${token[$v]}")
			wait "$storm"
			echo "round $r ${rev[$v]}: guarded during storm $g; storm logins $(cat "$work/storm.json")" >&2
			SG[$v]=$(field rps "$g") SP99[$v]=$(field p99_ms "$g") SL[$v]=$(field rps "$(cat "$work/storm.json")")
			sleep 1 # let the storm's queued logins drain
		fi
	done
	R_LOGIN+=("$(ratio "${LOGIN[b]}" "${LOGIN[a]}")") R_SIGNUP+=("$(ratio "${SIGNUP[b]}" "${SIGNUP[a]}")")
	if [[ "${STORM:-0}" == 1 ]]; then
		R_SG+=("$(ratio "${SG[b]}" "${SG[a]}")") R_SP99+=("$(ratio "${SP99[b]}" "${SP99[a]}")") R_SL+=("$(ratio "${SL[b]}" "${SL[a]}")")
	fi
done
for v in a b; do
	echo "${rev[$v]}: Caddy RSS $(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/${pid[$v]}/status") after the rounds"
done
printf '\n%-28s %8s %12s\n' "ratio B/A (per round)" median range
printf '%-28s %8s %12s\n' "login req/s" "$(median "${R_LOGIN[@]}")" "$(spread "${R_LOGIN[@]}")"
printf '%-28s %8s %12s\n' "signup req/s" "$(median "${R_SIGNUP[@]}")" "$(spread "${R_SIGNUP[@]}")"
if [[ "${STORM:-0}" == 1 ]]; then
	printf '%-28s %8s %12s\n' "guarded req/s during storm" "$(median "${R_SG[@]}")" "$(spread "${R_SG[@]}")"
	printf '%-28s %8s %12s\n' "guarded p99 during storm" "$(median "${R_SP99[@]}")" "$(spread "${R_SP99[@]}")"
	printf '%-28s %8s %12s\n' "storm logins/s" "$(median "${R_SL[@]}")" "$(spread "${R_SL[@]}")"
fi
