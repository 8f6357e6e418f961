// Command caddy is Caddy with its standard modules and the xanoauth plugin,
// so the example server runs with a plain `go run ./cmd/caddy`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/xanoauth/caddy-xanoauth"
)

func main() {
	caddycmd.Main()
}
