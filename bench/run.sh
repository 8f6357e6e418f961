#!/usr/bin/env bash
# Load benchmark of xanoauth against plain Caddy, on 127.0.0.1 only, in one
# run on one machine: the figures are ratios between interleaved cases.
#
#   bash bench/run.sh            # ~2 minutes
#   ROUND=3s ROUNDS=2 bash bench/run.sh   # quicker
#   HASHC=1 bash bench/run.sh              # hash_concurrency 1 (default: CPUs)
#   PIN=1 bash bench/run.sh                # Caddy on CPU 0, the load generator on the others
#
# It builds ./cmd/caddy and ./bench/load, starts Caddy on 127.0.0.1:9301
# with a bench Caddyfile, and prints one table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
ROUND=${ROUND:-5s}
ROUNDS=${ROUNDS:-3}
CPUS=$(nproc)
CONC=${CONC:-16}
PORT=9301
BASE="http://127.0.0.1:$PORT"

work=$(mktemp -d)
caddy_pid=""
cleanup() {
	if [[ -n "$caddy_pid" ]]; then kill "$caddy_pid" 2>/dev/null || true; sleep 2; kill -9 "$caddy_pid" 2>/dev/null || true; wait "$caddy_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "building..." >&2
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/load" ./bench/load

cat >"$work/Caddyfile" <<CADDY
{
	admin off
	http_port $PORT
	auto_https off
	grace_period 1s
	log {
		level ERROR
	}
	xano {
		storage bbolt $work/bench.db
		rate_limit off
		hash_concurrency ${HASHC:-0}
	}
}
http://127.0.0.1:$PORT {
	xano_auth /api:*
	handle /plain {
		respond "ok"
	}
	handle /guarded {
		xano_guard
		respond "ok"
	}
}
CADDY
server_pin=() load_pin=()
if [[ "${PIN:-0}" == 1 ]] && command -v taskset >/dev/null; then
	server_pin=(taskset -c 0) load_pin=(taskset -c "1-$((CPUS - 1))")
fi
XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" "${server_pin[@]}" "$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 50); do curl -fsS "$BASE/plain" >/dev/null 2>&1 && break; sleep 0.2; done

signup=$(curl -fsS -X POST "$BASE/api:b/auth/signup" -H 'Content-Type: application/json' \
	-d '{"email":"bench@example.com","password":"secret123"}')
TOKEN=$(sed 's/.*"authToken":"\([^"]*\)".*/\1/' <<<"$signup")

load() { "${load_pin[@]}" "$work/load" "$@"; }
field() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }

declare -A RPS P50 P99
record() { # name json
	RPS[$1]=$(field rps "$2"); P50[$1]=$(field p50_ms "$2"); P99[$1]=$(field p99_ms "$2")
	echo "$1: $2" >&2
}
best() { # name json: keep the best round (least disturbed by the noisy machine)
	local rps; rps=$(field rps "$2")
	if [[ -z "${RPS[$1]:-}" ]] || awk -v a="$rps" -v b="${RPS[$1]}" 'BEGIN{exit !(a>b)}'; then record "$1" "$2"; else echo "$1: $2" >&2; fi
}

echo "interleaved plain / guarded, $ROUNDS rounds of $ROUND at c=$CONC" >&2
for _ in $(seq "$ROUNDS"); do
	best plain "$(load -url "$BASE/plain" -c "$CONC" -d "$ROUND")"
	best guarded "$(load -url "$BASE/guarded" -c "$CONC" -d "$ROUND" -H "Authorization: Bearer $TOKEN")"
done

echo "hash time (go test -bench BenchmarkVerifyDefault)" >&2
hash_ns=$(go test -run='^$' -bench='^BenchmarkVerifyDefault$' -benchtime=20x ./password/ | awk '/BenchmarkVerifyDefault/ {print $3}')
hash_bound=$(awk -v c="$CPUS" -v ns="$hash_ns" 'BEGIN{printf "%.1f", c/(ns/1e9)}')

LOGINC=$((2 * CPUS))
record login "$(load -url "$BASE/api:b/auth/login" -method POST -c "$LOGINC" -d "$ROUND" -body '{"email":"bench@example.com","password":"secret123"}')"
record signup "$(load -url "$BASE/api:b/auth/signup" -method POST -c "$LOGINC" -d "$ROUND" -body '{"email":"u{n}@example.com","password":"secret123"}')"

echo "isolation: guarded during a login storm" >&2
load -url "$BASE/api:b/auth/login" -method POST -c "$((4 * CPUS))" -d "$ROUND" -body '{"email":"bench@example.com","password":"secret123"}' >"$work/storm.json" &
storm=$!
sleep 0.5
record storm_guarded "$(load -url "$BASE/guarded" -c "$CONC" -d "$ROUND" -H "Authorization: Bearer $TOKEN")"
wait "$storm"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
printf '\n%-30s %10s %9s %9s\n' case "req/s" "p50 ms" "p99 ms"
for k in plain guarded login signup storm_guarded; do
	printf '%-30s %10.0f %9.2f %9.2f\n' "$k" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}"
done
printf '\n%-52s %s\n' "hash-bound login limit (CPUs / one argon2id verify)" "$hash_bound req/s (verify $(awk -v ns="$hash_ns" 'BEGIN{printf "%.1f", ns/1e6}') ms, $CPUS CPUs)"
printf '%-52s %s  (target >= 0.95)\n' "guarded / plain" "$(ratio "${RPS[guarded]}" "${RPS[plain]}")"
printf '%-52s %s  (target >= 0.90)\n' "login / hash-bound" "$(ratio "${RPS[login]}" "$hash_bound")"
printf '%-52s %s  (target >= 0.90)\n' "signup / hash-bound" "$(ratio "${RPS[signup]}" "$hash_bound")"
printf '%-52s %s  (target >= 0.50)\n' "guarded during storm / guarded" "$(ratio "${RPS[storm_guarded]}" "${RPS[guarded]}")"
printf '%-52s %s  (target <= 5)\n' "p99 during storm / p99" "$(ratio "${P99[storm_guarded]}" "${P99[guarded]}")"
