package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// logFilters is the recommended log filter of docs/security.md: Caddy redacts
// Authorization and Cookie itself, but logs X-Xano-Authorization and the
// request URI as they came, with ?authtoken= and the query-string
// credentials JetAdmin sends (POST …/auth/login?email=…&password=…).
const logFilters = `format filter {
			request>uri query {
				replace authtoken REDACTED
				replace password REDACTED
				replace old_password REDACTED
				replace new_password REDACTED
				replace refreshToken REDACTED
			}
			request>headers>X-Xano-Authorization replace REDACTED
		}`

// TestSecretsStaySecret drives every credential-carrying path (signup,
// right and wrong login, me, refresh, the guard with the token in each
// place it is read from, a reverse proxy behind the guard) with DEBUG logs
// and access logs on, then checks that no log line and no response body
// holds a password, a token, a password hash or the key.
func TestSecretsStaySecret(t *testing.T) {
	dir := t.TempDir()
	debugLog := filepath.Join(dir, "debug.log")
	accessLog := filepath.Join(dir, "access.log")
	keyBytes := make([]byte, 32)
	_, _ = rand.Read(keyBytes)
	keyHex := hex.EncodeToString(keyBytes)
	t.Setenv("XANOAUTH_IT_KEY", keyHex)
	up := newUpstream(t)

	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
	log {
		output file %s
		level DEBUG
		%s
	}
	xano {
		storage bbolt %s
		key {env.XANOAUTH_IT_KEY}
		rate_limit off
		table user {
			refresh_ttl 1h
		}
	}
}
http://localhost:9080 {
	log {
		output file %s
		%s
	}
	xano_auth /api:*
	handle /members/* {
		xano_guard {
			cookie ww-auth-access-token
		}
		respond "member {http.auth.user.id}"
	}
	handle /app/* {
		xano_guard
		reverse_proxy %s
	}
}`, globals, debugLog, logFilters, filepath.Join(dir, "secrets.db"), accessLog, logFilters, up.addr()), "caddyfile")

	const pw, wrongPw = "Sup3rSecretPassw0rd", "Wr0ngGuessPassw0rd"
	var secrets []string // must appear in no log and no body but their own
	var bodies []string  // bodies that must hold no secret at all

	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "s@example.com", "password": pw, "name": "S"})
	if r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	tok1, rt1 := r.field(t, "authToken"), r.field(t, "refreshToken")
	r = do(t, "POST", "/api:x/auth/login?"+url.Values{"email": {"s@example.com"}, "password": {pw}}.Encode(), nil)
	if r.status != 200 {
		t.Fatalf("login (query): %d %s", r.status, r.body)
	}
	tok2, rt2 := r.field(t, "authToken"), r.field(t, "refreshToken")
	r = do(t, "POST", "/api:x/auth/login", map[string]string{"email": "s@example.com", "password": wrongPw})
	if r.status != 403 {
		t.Fatalf("wrong login: %d %s", r.status, r.body)
	}
	bodies = append(bodies, r.body)
	r = do(t, "POST", "/api:x/auth/login", map[string]string{"email": "nobody@example.com", "password": wrongPw})
	bodies = append(bodies, r.body)
	r = do(t, "POST", "/api:x/auth/refresh", map[string]string{"refreshToken": rt2})
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	tok3 := r.field(t, "authToken")
	secrets = append(secrets, pw, wrongPw, tok1, tok2, tok3, rt1, rt2, r.field(t, "refreshToken"))

	// A token-shaped string that is not ours: refused, and not logged.
	forged := strings.Join([]string{strings.SplitN(tok1, ".", 2)[0], "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", "QkJCQkJCQkJCQkJCQkJCQg", "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0ND", "RERERERERERERERERERERA"}, ".")
	secrets = append(secrets, forged)

	for _, c := range []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		{"me bearer", "/api:x/auth/me", []string{"Authorization", "Bearer " + tok1}, 200},
		{"me x-xano", "/api:x/auth/me", []string{"X-Xano-Authorization", tok2}, 200},
		{"guard bearer", "/members/a", []string{"Authorization", "Bearer " + tok1}, 200},
		{"guard x-xano", "/members/a", []string{"X-Xano-Authorization", tok2}, 200},
		{"guard query", "/members/a?authtoken=" + tok3, nil, 200},
		{"guard cookie", "/members/a", []string{"Cookie", "ww-auth-access-token=" + tok1}, 200},
		{"guard forged", "/members/a", []string{"Authorization", "Bearer " + forged}, 401},
		{"proxy bearer", "/app/a", []string{"Authorization", "Bearer " + tok2}, 200},
		{"proxy x-xano", "/app/a", []string{"X-Xano-Authorization", tok3}, 200},
		{"proxy query", "/app/a?authtoken=" + tok1, nil, 200},
		{"me forged", "/api:x/auth/me", []string{"Authorization", "Bearer " + forged}, 401},
	} {
		r := do(t, "GET", c.path, nil, c.headers...)
		if r.status != c.want {
			t.Fatalf("%s: %d %s", c.name, r.status, r.body)
		}
		bodies = append(bodies, r.body)
	}
	r = do(t, "POST", "/api:x/auth/logout", map[string]string{"refreshToken": rt1}, "Authorization", "Bearer "+tok1)
	if r.status != 200 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	bodies = append(bodies, r.body)

	// Stop Caddy's loggers writing before reading the files whole.
	if err := loadCaddyfile(fmt.Sprintf("{\n%s\n}\nhttp://localhost:9080 {\n\trespond ok\n}", globals)); err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, p := range []string{debugLog, accessLog} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty: the test would prove nothing", p)
		}
		logs = append(logs, string(b))
	}
	if !strings.Contains(logs[1], `"uri":"/members/a?authtoken=REDACTED"`) || !strings.Contains(logs[1], `"Authorization":["REDACTED"]`) {
		t.Fatalf("access log lacks the redacted requests; is it logging at all?\n%s", logs[1])
	}

	forbidden := append([]string{
		"$argon2id$", keyHex,
		base64.StdEncoding.EncodeToString(keyBytes), base64.RawURLEncoding.EncodeToString(keyBytes),
	}, secrets...)
	// The variable parts of each token (encrypted key, IV, ciphertext,
	// tag), so that a truncated or partly logged token is caught too; the
	// first part is the protected header, the same for every token.
	for _, tok := range []string{tok1, tok2, tok3} {
		for _, part := range strings.Split(tok, ".")[1:] {
			if len(part) >= 16 {
				forbidden = append(forbidden, part)
			}
		}
	}
	where := map[string]string{"debug log": logs[0], "access log": logs[1]}
	for i, b := range bodies {
		where[fmt.Sprintf("response body %d", i)] = b
	}
	for name, text := range where {
		for _, s := range forbidden {
			if strings.Contains(text, s) {
				t.Errorf("%s contains a secret (%.12s…)", name, s)
			}
		}
	}
	// The upstream got the user, not a hash or a password.
	if v, _ := up.header("Authorization"); v != "" && strings.Contains(v, pw) {
		t.Errorf("upstream saw the password")
	}
}
