#!/usr/bin/env bash
# Scale check: login and auth/me latency with 1,000 vs 1,000,000 users in the
# store, plus the store's file size and Caddy's RSS. Loopback only.
#
#   bash bench/scale.sh          # ~2 minutes (seeding 1M users takes ~15 s)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
BIG=${BIG:-1000000}
ROUND=${ROUND:-4s}
PORT=${PORT:-9311}
BASE="http://127.0.0.1:$PORT"
work=$(mktemp -d)
caddy_pid=""
stop_caddy() {
	if [[ -n "$caddy_pid" ]]; then kill "$caddy_pid" 2>/dev/null || true; sleep 2; kill -9 "$caddy_pid" 2>/dev/null || true; wait "$caddy_pid" 2>/dev/null || true; caddy_pid=""; fi
}
trap 'stop_caddy; rm -rf "$work"' EXIT

go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/load" ./bench/load
go build -o "$work/seed" ./bench/seed

field() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }
printf '%-10s %12s %12s %12s %12s %10s %10s\n' users "login p50" "login p99" "me p50" "me p99" "db MiB" "RSS MiB"
for n in 1000 "$BIG"; do
	db="$work/users-$n.db"
	"$work/seed" -db "$db" -n "$n" >&2
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
		storage bbolt $db
		rate_limit off
	}
}
http://127.0.0.1:$PORT {
	xano_auth /api:*
}
CADDY
	XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" "$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
	caddy_pid=$!
	for _ in $(seq 50); do curl -fsS -o /dev/null "$BASE/api:x/auth/me" -w '%{http_code}' 2>/dev/null | grep -q 401 && break; sleep 0.2; done
	# the user in the middle of the id range, so lookups are not all cache-hot at one end
	email="bench$((n / 2))@example.com"
	tok=$(curl -fsS -X POST "$BASE/api:x/auth/login" -H 'Content-Type: application/json' \
		-d "{\"email\":\"$email\",\"password\":\"secret123\"}" | sed 's/.*"authToken":"\([^"]*\)".*/\1/')
	login=$("$work/load" -url "$BASE/api:x/auth/login" -method POST -c 1 -d "$ROUND" -body "{\"email\":\"$email\",\"password\":\"secret123\"}")
	me=$("$work/load" -url "$BASE/api:x/auth/me" -c 8 -d "$ROUND" -H "Authorization: Bearer $tok")
	rss=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$caddy_pid/status")
	size=$(du -m "$db" | cut -f1)
	printf '%-10s %12s %12s %12s %12s %10s %10s\n' "$n" "$(field p50_ms "$login")" "$(field p99_ms "$login")" \
		"$(field p50_ms "$me")" "$(field p99_ms "$me")" "$size" "$rss"
	stop_caddy
done
