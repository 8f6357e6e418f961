package xanoauth

import (
	"reflect"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// warnAppendingProxies warns, once per config, about each HTTP server that
// trusts proxies but reads X-Forwarded-For from the left: a proxy that
// appends to the header (nginx's $proxy_add_x_forwarded_for, an AWS ALB)
// keeps whatever the client sent first, so Caddy's client IP, which the
// rate limits count by, is the client's choice. trusted_proxies_strict
// reads from the right, skipping only trusted proxies; a header the proxy
// overwrites (CF-Connecting-IP, X-Real-IP) needs neither.
func (a *App) warnAppendingProxies() {
	if a.svc.Limits == nil {
		return
	}
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return // no HTTP app: nothing reads client addresses
	}
	httpApp, ok := v.(*caddyhttp.App)
	if !ok {
		return
	}
	for name, srv := range httpApp.Servers {
		if appendingProxies(srv) {
			a.logger.Warn("rate limits count client addresses that clients can choose: this server trusts proxies "+
				"but reads X-Forwarded-For from the left; behind a proxy that appends to it (nginx "+
				"$proxy_add_x_forwarded_for, AWS ALB) set trusted_proxies_strict, or client_ip_headers to a "+
				"header your proxy overwrites (e.g. CF-Connecting-IP)",
				zap.String("server", name))
		}
	}
}

// appendingProxies reports whether srv takes the leftmost X-Forwarded-For
// entry of requests from trusted proxies.
func appendingProxies(srv *caddyhttp.Server) bool {
	if !trustsProxies(srv) || srv.TrustedProxiesStrict > 0 {
		return false
	}
	headers := srv.ClientIPHeaders
	if len(headers) == 0 {
		return true // Caddy's default is X-Forwarded-For
	}
	return slices.ContainsFunc(headers, func(h string) bool { return strings.EqualFold(h, "X-Forwarded-For") })
}

// trustsProxies reports whether srv has trusted_proxies. Provisioning
// loads TrustedProxiesRaw into an unexported field and zeroes the raw
// JSON, as Caddy does with every module field, so a provisioned server
// tells only through that field; reflection reads whether it is set
// (reading nil-ness needs no access to the value).
// TestWarnsAboutAppendingProxies catches a Caddy that renames it.
func trustsProxies(srv *caddyhttp.Server) bool {
	if len(srv.TrustedProxiesRaw) > 0 {
		return true // not provisioned (tests)
	}
	f := reflect.ValueOf(srv).Elem().FieldByName("trustedProxies")
	return f.IsValid() && f.Kind() == reflect.Interface && !f.IsNil()
}
