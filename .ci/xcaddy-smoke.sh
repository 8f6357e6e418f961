#!/usr/bin/env bash
# Builds Caddy with this plugin using xcaddy (pinned in tools/go.mod) and
# smoke-tests the resulting binary:
#   caddy version / build-info / list-modules / adapt Caddyfile.example
#
# Usage: bash .ci/xcaddy-smoke.sh
#
# Environment knobs (all optional):
#   CADDY_VERSION          Caddy version to build (default v2.11.9).
#   XANOAUTH_CADDY_OUT     Also copy the built binary to this path (e.g. for
#                          later CI steps such as browser tests).
#   XCADDY_SKIP_CLEANUP=1  Keep xcaddy's build environment (and this script's
#                          work dir) for debugging; the path is printed.
#   XCADDY_RACE_DETECTOR=1, XCADDY_DEBUG=1, XCADDY_GO_BUILD_FLAGS,
#   XCADDY_GO_MOD_FLAGS, XCADDY_WHICH_GO
#                          Passed through to xcaddy unchanged. Note: setting
#                          XCADDY_GO_BUILD_FLAGS replaces xcaddy's default
#                          `-ldflags "-w -s" -trimpath -tags nobadger,nomysql,nopgx`.
#
# How xcaddy v0.4.5 works (read from its source): it creates its own temp
# module (os.MkdirTemp in $TMPDIR, not the current directory), runs
# `go mod init caddy`, `go mod edit -replace <plugin>=<checkout>`,
# `go get` Caddy and the plugin, `go mod tidy -e`, then `go build`. It does
# not invoke git itself; modules come through GOPROXY. Because it works in a
# temp dir, running it from inside this checkout is fine. The Go build cache
# (default GOCACHE) is shared, so repeated runs are fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

caddy_version="${CADDY_VERSION:-v2.11.9}"
module_path="$(awk '$1 == "module" { print $2; exit }' go.mod)"
if [[ -z "$module_path" ]]; then
	echo "xcaddy-smoke: could not read the module path from $ROOT/go.mod" >&2
	exit 1
fi
# The plugin is pinned to Go's zero pseudo-version and replaced by this
# checkout (`--with <module>@<zero-version>=<dir>`). With a bare
# `--with <module>=<dir>`, xcaddy runs `go get <module>` (query "latest"),
# which asks GOPROXY for the module's version list; Go only falls back to the
# directory replacement when the proxy answers 404/410, so a proxy or mirror
# answering 403 (as the sandboxed one here does) breaks the build. For an exact
# replaced version Go uses the replacement whatever the proxy says.
plugin_version="v0.0.0-00010101000000-000000000000"
# Module IDs the plugin registers; each must show up in `caddy list-modules`.
expected_modules=(xano http.handlers.xano_auth http.handlers.xano_guard)

work="$(mktemp -d "${TMPDIR:-/tmp}/xanoauth-xcaddy.XXXXXX")"
cleanup() {
	if [[ "${XCADDY_SKIP_CLEANUP:-}" == "1" ]]; then
		echo "xcaddy-smoke: leaving work dir intact: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

bin="$work/caddy"

step() { printf '\n--- xcaddy-smoke: %s\n' "$*"; }

# Build xcaddy from the pinned tools module. GOWORK=off so a go.work file
# (if one ever appears) cannot pull the tools module into a workspace.
xcaddy_version="$(cd tools && GOWORK=off go tool xcaddy version)"
step "xcaddy $xcaddy_version (tools/go.mod)"

step "building Caddy $caddy_version with $module_path@$plugin_version=$ROOT"
start=$SECONDS
# TMPDIR=$work puts xcaddy's buildenv_* folder (and go's temp work dirs)
# under our work dir, so an interrupted run leaves nothing behind in /tmp.
(
	cd tools
	TMPDIR="$work" GOWORK=off go tool xcaddy build "$caddy_version" \
		--with "$module_path@$plugin_version=$ROOT" \
		--output "$bin"
)
echo "xcaddy-smoke: build took $((SECONDS - start))s"

step "caddy version"
"$bin" version

step "caddy build-info (must mention $module_path)"
# Capture first, then grep: piping straight into `grep -q` can SIGPIPE the
# writer and trip pipefail.
build_info="$("$bin" build-info)"
if ! grep -qF "$module_path" <<<"$build_info"; then
	echo "$build_info"
	echo "xcaddy-smoke: FAIL: build-info does not mention $module_path" >&2
	exit 1
fi
grep -F "$module_path" <<<"$build_info"

step "caddy list-modules (must contain: ${expected_modules[*]})"
modules="$("$bin" list-modules)"
if ! grep -i xano <<<"$modules"; then
	echo "xcaddy-smoke: FAIL: no module containing 'xano' in list-modules" >&2
	exit 1
fi
missing=0
for m in "${expected_modules[@]}"; do
	if ! grep -qFx "$m" <<<"$modules"; then
		echo "xcaddy-smoke: FAIL: module $m is not registered" >&2
		missing=1
	fi
done
if [[ $missing -ne 0 ]]; then
	exit 1
fi

if [[ -f "$ROOT/Caddyfile.example" ]]; then
	step "caddy adapt --config Caddyfile.example"
	"$bin" adapt --config "$ROOT/Caddyfile.example" --adapter caddyfile >"$work/adapted.json"
	if ! grep -q xano "$work/adapted.json"; then
		cat "$work/adapted.json"
		echo "xcaddy-smoke: FAIL: adapted config does not mention xano" >&2
		exit 1
	fi
	echo "adapted OK ($(wc -c <"$work/adapted.json") bytes of JSON)"
else
	step "no Caddyfile.example; skipping adapt"
fi

if [[ -n "${XANOAUTH_CADDY_OUT:-}" ]]; then
	mkdir -p "$(dirname "$XANOAUTH_CADDY_OUT")"
	cp "$bin" "$XANOAUTH_CADDY_OUT"
	echo "xcaddy-smoke: copied binary to $XANOAUTH_CADDY_OUT"
fi

step "OK"
