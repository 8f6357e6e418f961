package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/store"
	"github.com/xanoauth/caddy-xanoauth/token"
)

// fastParams keep argon2id cheap in tests; the algorithm is the same.
var fastParams = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

type fixture struct {
	svc   *Service
	store *store.Bolt
	clock time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := store.OpenBolt(filepath.Join(t.TempDir(), "auth.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewRing(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: db, clock: time.Unix(1700000000, 0)}
	f.svc = &Service{
		Store:  db,
		Hasher: password.NewHasher(fastParams, 4, 5*time.Second),
		Logger: zap.NewNop(),
		Tables: map[string]*Table{
			"user": {Name: "user", Fields: []string{"name"}, Extras: []string{"role"},
				Defaults: map[string]any{"role": "member"}, TokenTTL: time.Hour,
				SignupOpen: true, Policy: password.DefaultPolicy},
			"admin": {Name: "admin", Fields: []string{"name"}, TokenTTL: time.Hour,
				SignupOpen: false, Policy: password.DefaultPolicy},
		},
		DataSources: []string{"live", "test"},
		Now:         func() time.Time { return f.clock },
	}
	f.svc.SetKeys(ring)
	return f
}

func (f *fixture) auth(table string) *Auth {
	return &Auth{Svc: f.svc, Table: table, MaxBody: DefaultMaxBody}
}

// nextRecorder is the handler after ours; it records whether it ran and
// what the request looked like then.
type nextRecorder struct {
	called bool
	req    *http.Request
}

func (n *nextRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.called = true
	n.req = r
	w.WriteHeader(http.StatusTeapot)
	return nil
}

// withReplacer gives r the Replacer Caddy's server would have put there.
func withReplacer(r *http.Request) (*http.Request, *caddy.Replacer) {
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	return r.WithContext(ctx), repl
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

func serve(t *testing.T, h caddyhttp.MiddlewareHandler, r *http.Request) (response, *nextRecorder) {
	t.Helper()
	r, _ = withReplacer(r)
	w := httptest.NewRecorder()
	next := &nextRecorder{}
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("handler returned error: %v", err)
	}
	return response{Status: w.Code, Header: w.Header(), Body: w.Body.Bytes()}, next
}

func jsonReq(method, target string, body any) *http.Request {
	b, _ := json.Marshal(body)
	r := httptest.NewRequest(method, target, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// signup creates a user through the endpoint and returns its token.
func (f *fixture) signup(t *testing.T, email, pw string) string {
	t.Helper()
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": email, "password": pw, "name": "Ann"}))
	if resp.Status != 200 {
		t.Fatalf("signup: %d %s", resp.Status, resp.Body)
	}
	return resp.json(t)["authToken"].(string)
}

func wantError(t *testing.T, resp response, status int, code, msg string, param string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("status %d, want %d (body %s)", resp.Status, status, resp.Body)
	}
	var payload any = ""
	if param != "" {
		payload = map[string]any{"param": param}
	}
	want, _ := json.Marshal(map[string]any{"code": code, "message": msg, "payload": payload})
	var got, wantM any
	_ = json.Unmarshal(resp.Body, &got)
	_ = json.Unmarshal(want, &wantM)
	if !jsonEqual(got, wantM) {
		t.Fatalf("body %s, want %s", resp.Body, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
