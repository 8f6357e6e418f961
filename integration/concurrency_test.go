package integration

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// hardeningConfig is a site with the auth API and a guarded route; rate
// limits are raised out of the way (they are tested on their own), and so
// is Caddy's 16 KiB header limit, so that oversized tokens reach the
// plugin instead of being refused by net/http.
func hardeningConfig(dbPath string) string {
	return fmt.Sprintf(`{
	%s
	servers {
		max_header_size 512KiB
	}
	xano {
		storage bbolt %s
		rate_limit {
			login_ip 10000 1m
			login_account 10000 1m
			signup_ip 10000 1m
		}
		table user {
			refresh_ttl 1h
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	xano_guard /members/* {
		cookie ww-auth-access-token
	}
	respond "member {http.auth.user.id}"
}`, globals, dbPath)
}

// TestConcurrentSignupsOneEmail: 50 clients sign up the same email at
// once; exactly one gets the account, the others the Xano answer for a
// taken email, and no phantom user is created (the next id is 2).
func TestConcurrentSignupsOneEmail(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(hardeningConfig(filepath.Join(t.TempDir(), "race.db")), "caddyfile")

	const n = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, n)
	bodies := make([]string, n)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"email":"same@example.com","password":"secret123","name":"n%d"}`, i)
			req, _ := http.NewRequest("POST", base+"/api:x/auth/signup", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := client.Do(req)
			if err != nil {
				bodies[i] = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			statuses[i], bodies[i] = resp.StatusCode, string(b)
		}()
	}
	close(start)
	wg.Wait()

	const taken = `{"code":"ERROR_CODE_ACCESS_DENIED","message":"This account is already in use.","payload":""}`
	ok, refused := 0, 0
	winner := ""
	for i := range n {
		switch {
		case statuses[i] == 200:
			ok++
			winner = fmt.Sprintf("n%d", i)
		case statuses[i] == 403 && bodies[i] == taken:
			refused++
		default:
			t.Errorf("client %d: %d %s", i, statuses[i], bodies[i])
		}
	}
	if ok != 1 || refused != n-1 {
		t.Fatalf("%d × 200 and %d × 403, want 1 and %d", ok, refused, n-1)
	}
	// The account is the winner's, with id 1; the next user gets id 2.
	r := do(t, "POST", "/api:x/auth/login", map[string]string{"email": "same@example.com", "password": "secret123"})
	me := do(t, "GET", "/api:x/auth/me", nil, "Authorization", "Bearer "+r.field(t, "authToken"))
	if me.status != 200 || !strings.HasPrefix(me.body, `{"id":1,`) || !strings.Contains(me.body, `"name":"`+winner+`"`) {
		t.Fatalf("me: %d %s (winner %s)", me.status, me.body, winner)
	}
	if id := nextUserID(t); id != 2 {
		t.Fatalf("next user id %d, want 2: concurrent signups left phantom users", id)
	}
}

// nextUserID signs up a fresh user and returns its id: one more than the
// number of users created so far.
func nextUserID(t *testing.T) int {
	t.Helper()
	email := fmt.Sprintf("probe%d@example.com", time.Now().UnixNano())
	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": email, "password": "secret123"})
	if r.status != 200 {
		t.Fatalf("probe signup: %d %s", r.status, r.body)
	}
	me := do(t, "GET", "/api:x/auth/me", nil, "Authorization", "Bearer "+r.field(t, "authToken"))
	var id int
	if _, err := fmt.Sscanf(me.body, `{"id":%d,`, &id); err != nil {
		t.Fatalf("me: %d %s", me.status, me.body)
	}
	return id
}
