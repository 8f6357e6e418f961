package xanoauth

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestAppendingProxies(t *testing.T) {
	trusted := json.RawMessage(`{"source":"static","ranges":["10.0.0.0/8"]}`)
	cases := []struct {
		name string
		srv  *caddyhttp.Server
		want bool
	}{
		{"no trusted proxies", &caddyhttp.Server{}, false},
		{"trusted, default header, not strict", &caddyhttp.Server{TrustedProxiesRaw: trusted}, true},
		{"trusted, strict", &caddyhttp.Server{TrustedProxiesRaw: trusted, TrustedProxiesStrict: 1}, false},
		{"trusted, X-Forwarded-For named", &caddyhttp.Server{TrustedProxiesRaw: trusted, ClientIPHeaders: []string{"x-forwarded-for"}}, true},
		{"trusted, overwriting header", &caddyhttp.Server{TrustedProxiesRaw: trusted, ClientIPHeaders: []string{"CF-Connecting-IP"}}, false},
	}
	for _, c := range cases {
		if got := appendingProxies(c.srv); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
