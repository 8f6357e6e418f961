package xanoauth

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/xanoauth/caddy-xanoauth/handlers"
)

func TestParseRateLimit(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"xano {\n\trate_limit off\n}", `{"rate_limit":{"off":true}}`},
		{"xano {\n\trate_limit {\n\t\toff\n\t}\n}", `{"rate_limit":{"off":true}}`},
		{`xano {
			rate_limit {
				login_ip 5 1m
				login_account 3 1h
				signup_ip off
				refresh_ip 100 30s
				max_keys 5000
			}
		}`, `{"rate_limit":{"login_ip":{"events":5,"window":60000000000},"login_account":{"events":3,"window":3600000000000},` +
			`"signup_ip":{"off":true},"refresh_ip":{"events":100,"window":30000000000},"max_keys":5000}}`},
		{"xano {\n\trate_limit {\n\t}\n}", `{"rate_limit":{}}`},
	} {
		app := new(App)
		if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in)); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		got, _ := json.Marshal(app)
		if string(got) != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestParseRateLimitErrors(t *testing.T) {
	for _, c := range []struct{ name, in, line string }{
		{"unknown option", "xano {\n\trate_limit {\n\t\tlogin 1 1m\n\t}\n}", "Testfile:3"},
		{"duplicate option", "xano {\n\trate_limit {\n\t\tlogin_ip 1 1m\n\t\tlogin_ip 2 1m\n\t}\n}", "Testfile:4"},
		{"duplicate block", "xano {\n\trate_limit off\n\trate_limit off\n}", "Testfile:3"},
		{"missing window", "xano {\n\trate_limit {\n\t\tlogin_ip 5\n\t}\n}", "Testfile:3"},
		{"zero events", "xano {\n\trate_limit {\n\t\tsignup_ip 0 1h\n\t}\n}", "Testfile:3"},
		{"bad window", "xano {\n\trate_limit {\n\t\tsignup_ip 1 soon\n\t}\n}", "Testfile:3"},
		{"window under 1s", "xano {\n\trate_limit {\n\t\tsignup_ip 1 10ms\n\t}\n}", "Testfile:3"},
		{"bad argument", "xano {\n\trate_limit on\n}", "Testfile:2"},
		{"off with block", "xano {\n\trate_limit off {\n\t\tlogin_ip 1 1m\n\t}\n}", "Testfile:"},
		{"max_keys zero", "xano {\n\trate_limit {\n\t\tmax_keys 0\n\t}\n}", "Testfile:3"},
		{"off with argument", "xano {\n\trate_limit {\n\t\toff now\n\t}\n}", "Testfile:3"},
	} {
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
		if err == nil || !strings.Contains(err.Error(), c.line) {
			t.Errorf("%s: error %v, want one at %s", c.name, err, c.line)
		}
	}
}

func TestRateLimitConfigLimits(t *testing.T) {
	limits := func(rc *RateLimitConfig) (*handlers.Limits, error) {
		l, keys, err := rc.limits()
		t.Cleanup(func() { releaseLimiters(keys) })
		return l, err
	}
	// nil: every default.
	l, err := limits(nil)
	if err != nil || l.LoginIP.Limit() != 20 || l.LoginIP.Window() != 5*time.Minute ||
		l.LoginAccount.Limit() != 10 || l.SignupIP.Window() != time.Hour || l.RefreshIP.Limit() != 60 {
		t.Fatalf("defaults: %+v %v", l, err)
	}
	// off: none at all.
	if l, err := limits(&RateLimitConfig{Off: true}); l != nil || err != nil {
		t.Fatalf("off: %v %v", l, err)
	}
	// One changed, one off, the rest default.
	l, err = limits(&RateLimitConfig{
		LoginIP:  &RateLimit{Events: 3, Window: caddy.Duration(time.Minute)},
		SignupIP: &RateLimit{Off: true},
	})
	if err != nil || l.LoginIP.Limit() != 3 || l.SignupIP != nil || l.LoginAccount.Limit() != 10 {
		t.Fatalf("mixed: %+v %v", l, err)
	}
	// JSON written by hand is checked as strictly as the Caddyfile.
	for _, bad := range []*RateLimitConfig{
		{LoginIP: &RateLimit{Events: 0, Window: caddy.Duration(time.Minute)}},
		{RefreshIP: &RateLimit{Events: 1}},
		{MaxKeys: -1},
	} {
		if _, err := limits(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// TestLimitersShared: two configs with the same settings (a reload) share
// each limiter, so its counts go on; other settings get their own; the
// last release stops it.
func TestLimitersShared(t *testing.T) {
	rc := &RateLimitConfig{LoginIP: &RateLimit{Events: 2, Window: caddy.Duration(time.Minute)}}
	old, oldKeys, err := rc.limits()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old.LoginIP.Add("198.51.100.7", now)
	old.LoginIP.Add("198.51.100.7", now)
	next, nextKeys, err := rc.limits() // the reload provisions before it cleans up
	if err != nil {
		t.Fatal(err)
	}
	releaseLimiters(oldKeys)
	if blocked, _ := next.LoginIP.Blocked("198.51.100.7", now); !blocked || next.LoginIP != old.LoginIP {
		t.Fatal("a reload with the same settings gave the address a fresh budget")
	}
	other, otherKeys, err := (&RateLimitConfig{LoginIP: &RateLimit{Events: 3, Window: caddy.Duration(time.Minute)}}).limits()
	if err != nil {
		t.Fatal(err)
	}
	if other.LoginIP == next.LoginIP || other.LoginAccount != next.LoginAccount {
		t.Fatal("changed settings shared a limiter, or unchanged ones did not")
	}
	releaseLimiters(otherKeys)
	releaseLimiters(nextKeys)
	if n, ok := limiterPool.References("login_ip/2/1m0s/0"); ok || n != 0 {
		t.Fatalf("limiter still referenced after the last release: %d", n)
	}
}

// TestProvisionBuildsLimits: a provisioned app limits by default, and
// `off` gives the service no limits.
func TestProvisionBuildsLimits(t *testing.T) {
	for _, c := range []struct {
		rc   *RateLimitConfig
		want bool
	}{{nil, true}, {&RateLimitConfig{Off: true}, false}} {
		app := &App{Storage: &StorageConfig{Path: filepath.Join(t.TempDir(), "a.db")}, RateLimit: c.rc}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		if err := app.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		var l *handlers.Limits = app.Service().Limits
		if (l != nil) != c.want || (l != nil && l.LoginIP == nil) {
			t.Errorf("RateLimit %+v: limits %+v", c.rc, l)
		}
		cancel()
		_ = app.Cleanup()
	}
	bad := &App{Storage: &StorageConfig{Path: filepath.Join(t.TempDir(), "b.db")},
		RateLimit: &RateLimitConfig{SignupIP: &RateLimit{Events: 1}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := bad.Provision(ctx); err == nil || !strings.Contains(err.Error(), "signup_ip") {
		t.Fatalf("bad rate limit provisioned: %v", err)
	}
	_ = bad.Cleanup()
}

// TestRevocationCountersSurviveReload: the counters that bound a user's
// revocation records are shared by the configs of one store, as the rate
// limits are, so a reload does not reset the bound; another store gets
// its own.
func TestRevocationCountersSurviveReload(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	path := filepath.Join(t.TempDir(), "r.db")
	old := provisionApp(t, path, nil, &now)
	next := provisionApp(t, path, nil, &now) // a reload provisions before it cleans up
	a, b := old.svc.RevocationCounters["user"], next.svc.RevocationCounters["user"]
	if a == nil || a != b {
		t.Fatalf("a reload got its own revocation counter (%p, %p)", a, b)
	}
	other := provisionApp(t, filepath.Join(t.TempDir(), "other.db"), nil, &now)
	if other.svc.RevocationCounters["user"] == a {
		t.Fatal("another store shares the counter")
	}
}
