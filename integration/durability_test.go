package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// childCaddy is a Caddy process started from this test binary (see
// TestMain), so that it can be killed like a real server.
type childCaddy struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed once the process is reaped
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChildCaddy runs `caddy run` on cfg in a child process and waits
// until probe (a URL) answers at all.
func startChildCaddy(t *testing.T, cfg, probe string) *childCaddy {
	t.Helper()
	self, err := os.Executable() // not os.Args[0]: caddytest rewrites os.Args
	if err != nil {
		t.Fatal(err)
	}
	c := &childCaddy{out: new(lockedBuffer)}
	c.cmd = exec.Command(self, "run", "--config", cfg, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "XANOAUTH_TEST_RUN_CADDY=1")
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	c.exited = exited
	go func() { _ = c.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-exited
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("caddy exited early: %s", c.out.String())
		default:
		}
		resp, err := client.Get(probe)
		if err == nil {
			resp.Body.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not start: %v\n%s", err, c.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown hook, no deferred close, no final
// commit. Whatever was answered before must already be on disk.
func (c *childCaddy) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// The file lock dies with the process.
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("killed caddy was not reaped")
	}
}

// TestSignupSurvivesKill9: a signup that answered 200 is on disk, so a
// SIGKILL right after the answer loses neither the user nor the generated
// key (the token from before the kill still works after the restart).
func TestSignupSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "kill9.db")
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`{
	admin off
	persist_config off
	http_port 9180
	xano {
		storage bbolt %s
	}
}
http://localhost:9180 {
	xano_auth
}`, dbPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	const site = "http://localhost:9180"
	probe := site + "/api:x/auth/me"

	first := startChildCaddy(t, cfg, probe)
	var tokens []string
	for i := range 3 {
		r := post(t, site+"/api:x/auth/signup", map[string]string{
			"email": fmt.Sprintf("k%d@example.com", i), "password": "secret123"})
		if r.status != 200 {
			t.Fatalf("signup %d: %d %s", i, r.status, r.body)
		}
		tokens = append(tokens, r.field(t, "authToken"))
	}
	first.kill(t) // immediately after the last 200

	startChildCaddy(t, cfg, probe)
	for i := range 3 {
		r := post(t, site+"/api:x/auth/login", map[string]string{
			"email": fmt.Sprintf("k%d@example.com", i), "password": "secret123"})
		if r.status != 200 {
			t.Fatalf("login %d after kill -9: %d %s", i, r.status, r.body)
		}
	}
	r := send(t, "GET", site+"/api:x/auth/me", "", nil, "Authorization", "Bearer "+tokens[2])
	if r.status != 200 || !strings.HasPrefix(r.body, `{"id":3,`) {
		t.Fatalf("token from before the kill: %d %s", r.status, r.body)
	}
}
