package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/xanoauth/caddy-xanoauth/store"
	"github.com/xanoauth/caddy-xanoauth/token"
)

func TestSignupLoginMeFlow(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")

	resp, next := serve(t, a, jsonReq("POST", "/api:abc123/auth/signup", map[string]any{
		"name": "Ann", "email": "  Ann@Example.COM ", "password": "secret123", "unknown": "ignored",
	}))
	if next.called || resp.Status != 200 {
		t.Fatalf("signup: %d %s", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("missing security headers: %v", resp.Header)
	}
	body := resp.json(t)
	if len(body) != 1 {
		t.Fatalf("signup body has extra keys: %s", resp.Body)
	}
	tok, _ := body["authToken"].(string)
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if string(hdr) != `{"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF"}` {
		t.Fatalf("header %s", hdr)
	}

	// login with the email in another case and padded
	resp, _ = serve(t, a, jsonReq("POST", "/api:abc123/auth/login", map[string]any{"email": "ANN@example.com ", "password": "secret123"}))
	if resp.Status != 200 {
		t.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	tok2 := resp.json(t)["authToken"].(string)

	for _, tk := range []string{tok, tok2} {
		r := httptest.NewRequest("GET", "/api:abc123/auth/me", nil)
		r.Header.Set("Authorization", "Bearer "+tk)
		resp, _ = serve(t, a, r)
		if resp.Status != 200 {
			t.Fatalf("me: %d %s", resp.Status, resp.Body)
		}
		want := fmt.Sprintf(`{"id":1,"created_at":%d,"name":"Ann","email":"ann@example.com","role":"member"}`, int64(resp.json(t)["created_at"].(float64)))
		// created_at is ms since epoch: compare its magnitude too.
		if ms := int64(resp.json(t)["created_at"].(float64)); ms < time.Now().Add(-time.Minute).UnixMilli() || ms > time.Now().Add(time.Minute).UnixMilli() {
			t.Fatalf("created_at %d is not ms now", ms)
		}
		if string(resp.Body) != want {
			t.Fatalf("me body %s, want %s", resp.Body, want)
		}
	}
}

func TestMeHead(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "a@b.co", "secret123")
	r := httptest.NewRequest("HEAD", "/api:x/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, _ := serve(t, f.auth("user"), r)
	if resp.Status != 200 || len(resp.Body) != 0 || resp.Header.Get("Content-Length") == "" {
		t.Fatalf("HEAD me: %d %q %v", resp.Status, resp.Body, resp.Header)
	}
}

func TestInputEncodings(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	f.signup(t, "enc@example.com", "secret123")

	form := url.Values{"email": {"enc@example.com"}, "password": {"secret123"}}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("email", "enc@example.com")
	_ = mw.WriteField("password", "secret123")
	fw, _ := mw.CreateFormFile("avatar", "a.png")
	_, _ = fw.Write([]byte("PNG"))
	_ = mw.Close()

	cases := map[string]func() *http.Request{
		"query string on a POST (JetAdmin)": func() *http.Request {
			return httptest.NewRequest("POST", "/api:x/auth/login?"+form.Encode(), nil)
		},
		"json": func() *http.Request {
			return jsonReq("POST", "/api:x/auth/login", map[string]string{"email": "enc@example.com", "password": "secret123"})
		},
		"urlencoded": func() *http.Request {
			r := httptest.NewRequest("POST", "/api:x/auth/login", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		},
		"multipart": func() *http.Request {
			r := httptest.NewRequest("POST", "/api:x/auth/login", bytes.NewReader(mp.Bytes()))
			r.Header.Set("Content-Type", mw.FormDataContentType())
			return r
		},
		"json without content type": func() *http.Request {
			return httptest.NewRequest("POST", "/api:x/auth/login", strings.NewReader(`{"email":"enc@example.com","password":"secret123"}`))
		},
		"json as text/plain": func() *http.Request {
			r := httptest.NewRequest("POST", "/api:x/auth/login", strings.NewReader(`{"email":"enc@example.com","password":"secret123"}`))
			r.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			return r
		},
		"body wins over query": func() *http.Request {
			return jsonReq("POST", "/api:x/auth/login?password=wrong", map[string]string{"email": "enc@example.com", "password": "secret123"})
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			resp, _ := serve(t, a, mk())
			if resp.Status != 200 {
				t.Fatalf("%d %s", resp.Status, resp.Body)
			}
		})
	}
}

func TestSignupErrors(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	f.signup(t, "taken@example.com", "secret123")
	cases := []struct {
		name        string
		body        any
		status      int
		code, msg   string
		param       string
		contentType string
	}{
		{"missing everything", map[string]any{}, 400, CodeInputError, "Missing param: email", "email", ""},
		{"missing password", map[string]any{"email": "x@example.com"}, 400, CodeInputError, "Missing param: password", "password", ""},
		{"empty email", map[string]any{"email": "  ", "password": "secret123"}, 400, CodeInputError, "Missing param: email", "email", ""},
		{"short password", map[string]any{"email": "x@example.com", "password": "abc1"}, 400, CodeInputError, "Input does not meet minimum length requirement of 8 characters", "password", ""},
		{"no digit", map[string]any{"email": "x@example.com", "password": "abcdefgh"}, 400, CodeInputError, "Weak password detected. Please use at least 1 numbers.", "password", ""},
		{"no letter", map[string]any{"email": "x@example.com", "password": "12345678"}, 400, CodeInputError, "Weak password detected. Please use at least 1 letters.", "password", ""},
		{"duplicate email in other case", map[string]any{"email": "TAKEN@example.com", "password": "secret123"}, 403, CodeAccessDenied, "This account is already in use.", "", ""},
		{"invalid email", map[string]any{"email": "not-an-email", "password": "secret123"}, 400, CodeInputError, MsgInvalidEmail, "email", ""},
		{"email with display name", map[string]any{"email": "Ann <a@b.co>", "password": "secret123"}, 400, CodeInputError, MsgInvalidEmail, "email", ""},
		{"email as object", map[string]any{"email": map[string]any{"$ne": ""}, "password": "secret123"}, 400, CodeInputError, MsgNotText, "email", ""},
		{"name as array", map[string]any{"name": []any{1}, "email": "x@example.com", "password": "secret123"}, 400, CodeInputError, MsgNotText, "name", ""},
		{"name too long", map[string]any{"name": strings.Repeat("n", MaxFieldLength+1), "email": "x@example.com", "password": "secret123"}, 400, CodeInputError, "Input exceeds maximum length of 1024 characters", "name", ""},
		{"NUL in password", map[string]any{"email": "x@example.com", "password": "secret123\x00"}, 400, CodeInputError, MsgNotText, "password", ""},
		{"malformed json", `{"email":`, 400, CodeInputError, MsgBadJSON, "", "application/json"},
		{"json array", `[1,2]`, 400, CodeInputError, MsgBadJSON, "", "application/json"},
		{"trailing data", `{"email":"x@example.com"} {}`, 400, CodeInputError, MsgBadJSON, "", "application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r *http.Request
			if s, ok := c.body.(string); ok {
				r = httptest.NewRequest("POST", "/api:x/auth/signup", strings.NewReader(s))
				r.Header.Set("Content-Type", c.contentType)
			} else {
				r = jsonReq("POST", "/api:x/auth/signup", c.body)
			}
			resp, _ := serve(t, a, r)
			wantError(t, resp, c.status, c.code, c.msg, c.param)
		})
	}
	n, err := f.store.CountUsers(context.Background(), store.Realm{DataSource: "live", Table: "user"})
	if err != nil || n != 1 {
		t.Fatalf("bad signups wrote users: %d %v", n, err)
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	a.MaxBody = 100
	r := jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "x@example.com", "password": strings.Repeat("a1", 100)})
	resp, _ := serve(t, a, r)
	wantError(t, resp, 413, CodeInputError, "Request body exceeds the limit of 100 bytes.", "")
}

func TestLoginErrorsDoNotRevealAccounts(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	f.signup(t, "real@example.com", "secret123")
	wrongPw, _ := serve(t, a, jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "real@example.com", "password": "wrong1234"}))
	unknown, _ := serve(t, a, jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "ghost@example.com", "password": "wrong1234"}))
	wantError(t, wrongPw, 403, CodeAccessDenied, "Invalid Credentials.", "")
	wantError(t, unknown, 403, CodeAccessDenied, "Invalid Credentials.", "")
	if !bytes.Equal(wrongPw.Body, unknown.Body) {
		t.Fatalf("bodies differ: %s vs %s", wrongPw.Body, unknown.Body)
	}
	missing, _ := serve(t, a, jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "real@example.com"}))
	wantError(t, missing, 400, CodeInputError, "Missing param: password", "password")
}

func TestWrongMethodAndUnknownPaths(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api:x/auth/login"}, {"GET", "/api:x/auth/signup"}, {"POST", "/api:x/auth/me"}, {"DELETE", "/api:x/auth/me"},
	} {
		resp, next := serve(t, a, httptest.NewRequest(c.method, c.path, nil))
		if next.called {
			t.Fatalf("%s %s went to next", c.method, c.path)
		}
		wantError(t, resp, 404, CodeNotFound, "Unable to locate request.", "")
	}
	for _, p := range []string{"/", "/api:x/auth/other", "/api:x/auth/login/extra", "/index.html"} {
		_, next := serve(t, a, httptest.NewRequest("GET", p, nil))
		if !next.called {
			t.Fatalf("%s did not pass to next", p)
		}
	}
}

func TestSignupClosedAndExtrasNotSettable(t *testing.T) {
	f := newFixture(t)
	resp, _ := serve(t, f.auth("admin"), jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "x@example.com", "password": "secret123"}))
	wantError(t, resp, 403, CodeAccessDenied, MsgSignupClosed, "")

	// role is an extra: a user asking to be admin gets the default instead
	resp, _ = serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "x@example.com", "password": "secret123", "role": "admin"}))
	if resp.Status != 200 {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	c, err := f.svc.Keys().Verify(resp.json(t)["authToken"].(string), f.clock, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Extras["role"] != "member" || c.Table != "user" || c.DS != "live" || c.ID != 1 || c.SID == "" {
		t.Fatalf("claims %+v", c)
	}
	if c.Expiry-c.IssuedAt != 3600 {
		t.Fatalf("ttl %d", c.Expiry-c.IssuedAt)
	}
}

func TestMeTokenErrors(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	tok := f.signup(t, "me@example.com", "secret123")

	other, _ := token.GenerateKey()
	otherRing, _ := token.NewRing(other)
	foreign, _ := otherRing.Mint(token.Claims{ID: 1, Table: "user", DS: "live", Expiry: f.clock.Unix() + 60})
	adminTok, _ := f.svc.Keys().Mint(token.Claims{ID: 1, Table: "admin", DS: "live", Expiry: f.clock.Unix() + 60})
	ghost, _ := f.svc.Keys().Mint(token.Claims{ID: 99, Table: "user", DS: "live", Expiry: f.clock.Unix() + 60})

	cases := []struct {
		name   string
		set    func(r *http.Request)
		status int
		code   string
		msg    string
	}{
		{"no token", func(r *http.Request) {}, 401, CodeUnauthorized, MsgAuthRequired},
		{"garbage", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, 401, CodeUnauthorized, MsgInvalidToken},
		{"other key", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+foreign) }, 401, CodeUnauthorized, MsgInvalidToken},
		{"other table", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminTok) }, 401, CodeUnauthorized, MsgInvalidToken},
		{"deleted user", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+ghost) }, 401, CodeUnauthorized, MsgInvalidToken},
		{"other data source", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("X-Data-Source", "test")
		}, 401, CodeUnauthorized, MsgOtherDataSource},
		{"unknown data source", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("X-Data-Source", "nope")
		}, 400, CodeInputError, MsgUnknownDataSource},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api:x/auth/me", nil)
			c.set(r)
			resp, _ := serve(t, a, r)
			wantError(t, resp, c.status, c.code, c.msg, "")
			if bytes.Contains(resp.Body, []byte(tok)) {
				t.Fatal("token echoed")
			}
		})
	}

	// expiry is exact: valid one second before exp, refused at exp
	f.clock = f.clock.Add(time.Hour - time.Second)
	r := httptest.NewRequest("GET", "/api:x/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if resp, _ := serve(t, a, r); resp.Status != 200 {
		t.Fatalf("token refused before expiry: %s", resp.Body)
	}
	f.clock = f.clock.Add(time.Second)
	resp, _ := serve(t, a, r)
	wantError(t, resp, 401, CodeUnauthorized, MsgTokenExpired, "")
}

func TestDataSourcesAreSeparate(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	f.signup(t, "ds@example.com", "secret123")
	r := jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "ds@example.com", "password": "secret123"})
	r.Header.Set("X-Data-Source", "test")
	resp, _ := serve(t, a, r)
	wantError(t, resp, 403, CodeAccessDenied, MsgInvalidCredentials, "")
}

func TestBcryptImportedUserIsRehashed(t *testing.T) {
	f := newFixture(t)
	realm := store.Realm{DataSource: "live", Table: "user"}
	for i, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		h, _ := bcrypt.GenerateFromPassword([]byte("imported1"), bcrypt.MinCost)
		hash := prefix + string(h[4:])
		email := fmt.Sprintf("imp%d@example.com", i)
		u := &store.User{Email: email, Fields: map[string]any{"name": "Imp"}, PasswordHash: hash}
		if err := f.store.CreateUser(context.Background(), realm, u); err != nil {
			t.Fatal(err)
		}
		resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": "imported1"}))
		if resp.Status != 200 {
			t.Fatalf("%s login: %d %s", prefix, resp.Status, resp.Body)
		}
		got, _ := f.store.UserByID(context.Background(), realm, u.ID)
		if !strings.HasPrefix(got.PasswordHash, "$argon2id$") {
			t.Fatalf("%s hash not upgraded", prefix)
		}
		resp, _ = serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": "imported1"}))
		if resp.Status != 200 {
			t.Fatalf("login after rehash: %d %s", resp.Status, resp.Body)
		}
	}
}

func TestMirrorAccessToken(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	a.MirrorAccessToken = true
	resp, _ := serve(t, a, jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "m@example.com", "password": "secret123"}))
	b := resp.json(t)
	if b["authToken"] == nil || b["authToken"] != b["accessToken"] {
		t.Fatalf("body %s", resp.Body)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t)
	a := f.auth("user")
	r := httptest.NewRequest("OPTIONS", "/api:x/auth/login", nil)
	r.Header.Set("Origin", "https://app.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-data-source")
	resp, next := serve(t, a, r)
	if next.called || resp.Status != 204 {
		t.Fatalf("preflight: %d", resp.Status)
	}
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-data-source" || h.Get("Access-Control-Max-Age") != "3600" ||
		!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Fatalf("preflight headers %v", h)
	}

	a.CORS.Origins = []string{"https://good.example"}
	resp, _ = serve(t, a, r)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("disallowed origin was allowed")
	}
	a.CORS.Disabled = true
	_, next = serve(t, a, r)
	if !next.called {
		t.Fatal("with CORS disabled, preflight should pass on")
	}
}
