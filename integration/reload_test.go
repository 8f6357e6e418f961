package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func reloadConfig(dbPath, greeting string) string {
	return fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
	}
}
http://localhost:9080 {
	xano_auth /api:*
	xano_guard /members/*
	respond "%s {http.auth.user.id}"
}`, globals, dbPath, greeting)
}

// TestReloadWhileServing reloads the config several times while clients
// keep calling a guarded route: the shared bbolt handle must not deadlock
// on its file lock, no request may fail, and users and keys must survive.
func TestReloadWhileServing(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "reload.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(reloadConfig(dbPath, "v0"), "caddyfile")

	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "r@example.com", "password": "secret123"})
	tok := r.field(t, "authToken")
	if tok == "" {
		t.Fatalf("signup: %s", r.body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ok, failed, retried atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", base+"/members/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return client.Do(req)
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 20000; n++ { // bounded, and stopped once reloads end
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				resp, err := get()
				if err != nil {
					// A connection the old server closed at the moment a
					// request was sent on it (EOF / reset) is HTTP/1.1
					// keep-alive, below the plugin; every client retries
					// it once, and so does this one. A second failure,
					// or any wrong answer, counts.
					retried.Add(1)
					resp, err = get()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.HasSuffix(buf.String(), " 1") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, buf.String()))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 1; i <= 3; i++ {
		time.Sleep(200 * time.Millisecond)
		if err := loadCaddyfile(reloadConfig(dbPath, fmt.Sprintf("v%d", i))); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v), %d ok", failed.Load(), firstErr.Load(), ok.Load())
	}
	t.Logf("%d guarded requests during 3 reloads, none failed (%d connection-level retries)", ok.Load(), retried.Load())

	if r := do(t, "GET", "/members/x", nil, "Authorization", "Bearer "+tok); r.status != 200 || r.body != "v3 1" {
		t.Fatalf("old token after reloads: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", "/api:x/auth/login", map[string]string{"email": "r@example.com", "password": "secret123"}); r.status != 200 {
		t.Fatalf("login after reloads: %d %s", r.status, r.body)
	}
}

// loadCaddyfile posts a config to the admin API, as `caddy reload` does.
func loadCaddyfile(cfg string) error {
	body, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		return err
	}
	resp, err := client.Post("http://localhost:2999/load", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("%d %s", resp.StatusCode, b.String())
	}
	return nil
}

// TestSecondProcessFailsFast starts a second Caddy process on a database
// this process holds: it must exit quickly with a clear message, not hang.
func TestSecondProcessFailsFast(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "locked.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(reloadConfig(dbPath, "held"), "caddyfile")

	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`{
	admin off
	http_port 9081
	xano {
		storage bbolt %s {
			lock_timeout 300ms
		}
	}
}
http://localhost:9081 {
	xano_auth
}`, dbPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	self, err := os.Executable() // not os.Args[0]: caddytest rewrites os.Args
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, self, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XANOAUTH_TEST_RUN_CADDY=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("second process did not fail fast (err %v, ctx %v): %s", err, ctx.Err(), out)
	}
	if !strings.Contains(string(out), "locked by another process") || !strings.Contains(string(out), dbPath) {
		t.Fatalf("unclear error: %s", out)
	}
	t.Logf("second process refused after %v", time.Since(start).Round(time.Millisecond))
}

// TestJSONConfig configures the plugin with JSON, as `caddy adapt` writes it.
func TestJSONConfig(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "json.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	"admin": {"listen": "localhost:2999"},
	"apps": {
		"xano": {
			"storage": {"type": "bbolt", "path": %q},
			"tables": {"user": {"fields": ["name"], "token_ttl": 60000000000}}
		},
		"http": {
			"http_port": 9080,
			"servers": {
				"srv0": {
					"listen": [":9080"],
					"routes": [
						{"handle": [{"handler": "xano_auth", "access_token": true}]},
						{"match": [{"path": ["/members/*"]}], "handle": [{"handler": "xano_guard"}]},
						{"handle": [{"handler": "static_response", "body": "ok {http.auth.user.id}"}]}
					]
				}
			}
		}
	}
}`, dbPath), "json")
	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "j@example.com", "password": "secret123"})
	if r.status != 200 || r.field(t, "accessToken") != r.field(t, "authToken") {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	if r2 := do(t, "GET", "/members/a", nil, "Authorization", "Bearer "+r.field(t, "authToken")); r2.body != "ok 1" {
		t.Fatalf("guard: %d %s", r2.status, r2.body)
	}
}

// TestRateLimitsSurviveReload: `caddy reload` must not hand an attacker a
// fresh budget (caddy-docker-proxy reloads on every container event): an
// address refused before a reload is refused after it, while the limit's
// settings stay; changed settings start afresh.
func TestRateLimitsSurviveReload(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "limits.db")
	cfg := func(greeting string, events int) string {
		return fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		rate_limit {
			login_ip %d 5m
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	respond "%s"
}`, globals, dbPath, events, greeting)
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(cfg("v1", 3), "caddyfile")
	guess := func() int {
		return do(t, "POST", "/api:x/auth/login", map[string]string{"email": "nobody@example.com", "password": "guess1234"}).status
	}
	for i := range 3 {
		if st := guess(); st != 403 {
			t.Fatalf("guess %d: %d", i, st)
		}
	}
	if st := guess(); st != 429 {
		t.Fatalf("past the limit: %d", st)
	}
	if err := loadCaddyfile(cfg("v2", 3)); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", "/", nil); r.body != "v2" {
		t.Fatalf("reload not applied: %q", r.body)
	}
	if st := guess(); st != 429 {
		t.Errorf("after a reload with the same limits: %d, want 429 (a fresh budget)", st)
	}
	if err := loadCaddyfile(cfg("v3", 4)); err != nil {
		t.Fatal(err)
	}
	if st := guess(); st != 403 {
		t.Errorf("after a reload with another limit: %d, want 403 (its own counts)", st)
	}
}
