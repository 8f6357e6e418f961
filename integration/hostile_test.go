package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestHostileInput sends malformed and oversized input of every kind over
// real HTTP. Each must be answered with a 4xx in the Xano envelope, never a
// 5xx or an empty body, and none may create a user: after all of them the
// next signup still gets id 2.
func TestHostileInput(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(hardeningConfig(filepath.Join(t.TempDir(), "hostile.db")), "caddyfile")
	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "first@example.com", "password": "secret123"})
	if r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	tok := r.field(t, "authToken")

	big := func(n int, c string) string { return strings.Repeat(c, n) }
	nested := big(10000, "[") + big(10000, "]")
	nestedObj := big(10000, `{"a":`) + "1" + big(10000, "}")
	const ctJSON = "application/json"
	const ctForm = "application/x-www-form-urlencoded"
	cases := []struct {
		name, method, path, ctype, body string
		headers                         []string
		status                          int
		message                         string // "" accepts any message
	}{
		// oversized credentials
		{"16KiB Authorization", "GET", "/api:x/auth/me", "", "", []string{"Authorization", "Bearer " + big(16<<10, "A")}, 401, "Invalid token."},
		{"16KiB Authorization on guard", "GET", "/members/x", "", "", []string{"Authorization", "Bearer " + big(16<<10, "A")}, 401, "Invalid token."},
		{"100KiB token", "GET", "/members/x", "", "", []string{"X-Xano-Authorization", big(100<<10, "e")}, 401, "Invalid token."},
		{"100KiB token of five parts", "GET", "/members/x", "", "", []string{"Authorization", "Bearer " + strings.Repeat(big(20<<10, "e")+".", 4) + "e"}, 401, "Invalid token."},
		{"100KiB token in query", "GET", "/members/x?authtoken=" + big(100<<10, "e"), "", "", nil, 401, "Invalid token."},
		{"100KiB token in cookie", "GET", "/members/x", "", "", []string{"Cookie", "ww-auth-access-token=" + big(100<<10, "e")}, 401, "Invalid token."},
		{"token with a valid header and junk", "GET", "/members/x", "", "", []string{"Authorization", "Bearer " + strings.SplitN(tok, ".", 2)[0] + ".." + big(64, "A") + ".."}, 401, "Invalid token."},
		{"100KiB refresh token", "POST", "/api:x/auth/refresh", ctJSON, `{"refreshToken":"` + big(60<<10, "r") + `"}`, nil, 401, "Invalid refresh token."},
		{"16KiB X-Data-Source", "POST", "/api:x/auth/login", ctJSON, `{"email":"first@example.com","password":"secret123"}`, []string{"X-Data-Source", big(16<<10, "d")}, 400, "Unknown data source."},
		// bodies
		{"body over 64KiB", "POST", "/api:x/auth/signup", ctJSON, `{"email":"a@b.co","password":"secret123","name":"` + big(70<<10, "n") + `"}`, nil, 413, "Request body exceeds the limit of 65536 bytes."},
		{"invalid UTF-8 in JSON email", "POST", "/api:x/auth/signup", ctJSON, "{\"email\":\"\xff\xfe@example.com\",\"password\":\"secret123\"}", nil, 400, "Value must be text."},
		{"invalid UTF-8 in JSON name", "POST", "/api:x/auth/signup", ctJSON, "{\"email\":\"u1@example.com\",\"password\":\"secret123\",\"name\":\"a\xc3\x28b\"}", nil, 400, "Value must be text."},
		{"invalid UTF-8 in JSON password", "POST", "/api:x/auth/signup", ctJSON, "{\"email\":\"u2@example.com\",\"password\":\"secret123\xff\"}", nil, 400, "Value must be text."},
		{"invalid UTF-8 in form", "POST", "/api:x/auth/signup", ctForm, "email=u3%40example.com&password=secret123&name=%ff%fe", nil, 400, "Value must be text."},
		{"lone surrogate escape", "POST", "/api:x/auth/signup", ctJSON, `{"email":"u4@example.com","password":"secret123","name":"\ud800"}`, nil, 400, "Value must be text."},
		{"NUL escape in JSON", "POST", "/api:x/auth/signup", ctJSON, `{"email":"u5@example.com\u0000","password":"secret123"}`, nil, 400, "Value must be text."},
		{"NUL escape in name", "POST", "/api:x/auth/signup", ctJSON, `{"email":"u6@example.com","password":"secret123","name":"a\u0000b"}`, nil, 400, "Value must be text."},
		{"raw NUL in JSON", "POST", "/api:x/auth/signup", ctJSON, "{\"email\":\"u7@example.com\x00\",\"password\":\"secret123\"}", nil, 400, "Request body is not valid JSON."},
		{"NUL in form", "POST", "/api:x/auth/signup", ctForm, "email=u8%40example.com&password=secret123%00", nil, 400, "Value must be text."},
		{"NUL in query", "POST", "/api:x/auth/signup?email=u9%40example.com%00&password=secret123", "", "", nil, 400, "Value must be text."},
		{"duplicate keys", "POST", "/api:x/auth/signup", ctJSON, `{"email":"first@example.com","email":"dup@example.com","password":"secret123"}`, nil, 400, "Duplicate param: email"},
		{"duplicate password keys", "POST", "/api:x/auth/login", ctJSON, `{"email":"first@example.com","password":"wrong1234","password":"secret123"}`, nil, 400, "Duplicate param: password"},
		{"10k nested arrays", "POST", "/api:x/auth/signup", ctJSON, `{"email":"n1@example.com","password":"secret123","name":` + nested + `}`, nil, 400, ""},
		{"10k nested objects", "POST", "/api:x/auth/signup", ctJSON, `{"email":"n2@example.com","password":"secret123","x":` + nestedObj + `}`, nil, 400, ""},
		{"10k nested body", "POST", "/api:x/auth/signup", ctJSON, nested, nil, 400, "Request body is not valid JSON."},
		{"number as email", "POST", "/api:x/auth/signup", ctJSON, `{"email":12345,"password":"secret123"}`, nil, 400, "Invalid email address."},
		{"number as password", "POST", "/api:x/auth/signup", ctJSON, `{"email":"p1@example.com","password":12345678}`, nil, 400, "Weak password detected. Please use at least 1 letters."},
		{"huge number", "POST", "/api:x/auth/signup", ctJSON, `{"email":1e999999,"password":"secret123"}`, nil, 400, "Invalid email address."},
		{"bool as password", "POST", "/api:x/auth/signup", ctJSON, `{"email":"p2@example.com","password":true}`, nil, 400, ""},
		{"null email", "POST", "/api:x/auth/signup", ctJSON, `{"email":null,"password":"secret123"}`, nil, 400, "Missing param: email"},
		{"array as email", "POST", "/api:x/auth/signup", ctJSON, `{"email":["a@example.com"],"password":"secret123"}`, nil, 400, "Value must be text."},
		{"object as password", "POST", "/api:x/auth/signup", ctJSON, `{"email":"p3@example.com","password":{"$gt":""}}`, nil, 400, "Value must be text."},
		{"array as login password", "POST", "/api:x/auth/login", ctJSON, `{"email":"first@example.com","password":["secret123"]}`, nil, 400, "Value must be text."},
		{"array body", "POST", "/api:x/auth/signup", ctJSON, `[{"email":"a1@example.com","password":"secret123"}]`, nil, 400, "Request body is not valid JSON."},
		{"string body", "POST", "/api:x/auth/signup", ctJSON, `"a@example.com"`, nil, 400, "Request body is not valid JSON."},
		{"trailing garbage", "POST", "/api:x/auth/signup", ctJSON, `{"email":"t1@example.com","password":"secret123"} {"x":1}`, nil, 400, "Request body is not valid JSON."},
		{"truncated JSON", "POST", "/api:x/auth/signup", ctJSON, `{"email":"t2@example.com","password":"secr`, nil, 400, "Request body is not valid JSON."},
		{"multipart without boundary", "POST", "/api:x/auth/signup", "multipart/form-data", "--x\r\n", nil, 400, ""},
		{"multipart truncated", "POST", "/api:x/auth/signup", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nm1@example.com", nil, 400, ""},
		{"300-byte email", "POST", "/api:x/auth/signup", ctJSON, `{"email":"` + big(290, "e") + `@example.com","password":"secret123"}`, nil, 400, "Invalid email address."},
		{"email with display name", "POST", "/api:x/auth/signup", ctJSON, `{"email":"Eve <e1@example.com>","password":"secret123"}`, nil, 400, "Invalid email address."},
		{"email with CRLF", "POST", "/api:x/auth/signup", ctJSON, `{"email":"e2@example.com\r\nBcc: x@example.com","password":"secret123"}`, nil, 400, "Invalid email address."},
		{"1025-char name", "POST", "/api:x/auth/signup", ctJSON, `{"email":"l1@example.com","password":"secret123","name":"` + big(1025, "é") + `"}`, nil, 400, "Input exceeds maximum length of 1024 characters"},
		{"1025-byte password", "POST", "/api:x/auth/signup", ctJSON, `{"email":"l2@example.com","password":"a1` + big(1023, "x") + `"}`, nil, 400, ""},
		{"60KiB password at login", "POST", "/api:x/auth/login", ctJSON, `{"email":"first@example.com","password":"` + big(60<<10, "x") + `"}`, nil, 403, "Invalid Credentials."},
		{"unknown data source", "POST", "/api:x/auth/signup", ctJSON, `{"email":"d1@example.com","password":"secret123"}`, []string{"X-Data-Source", "../../etc"}, 400, "Unknown data source."},
		{"wrong method", "PUT", "/api:x/auth/signup", ctJSON, `{"email":"w1@example.com","password":"secret123"}`, nil, 404, "Unable to locate request."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			ctype := ""
			if c.method == "POST" || c.method == "PUT" {
				ctype = c.ctype
				if c.body != "" || c.ctype != "" {
					body = []byte(c.body)
				}
			}
			r := send(t, c.method, c.path, ctype, body, c.headers...)
			checkEnvelope(t, r, c.status, c.message)
		})
	}

	// What Go's HTTP server refuses before Caddy (and so before us) is
	// answered in plain text: a NUL in a header and headers over Caddy's
	// 1 MiB limit. They must still be 4xx and create nothing.
	for _, c := range []struct {
		name string
		raw  string
	}{
		{"NUL in header", "GET /api:x/auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer a\x00b\r\n\r\n"},
		{"2MiB header", "GET /api:x/auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + big(2<<20, "a") + "\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if status := rawStatus(t, c.raw); status < 400 || status > 499 {
				t.Fatalf("status %d", status)
			}
		})
	}

	if id := nextUserID(t); id != 2 {
		t.Fatalf("next user id %d, want 2: hostile input created users", id)
	}
	// The first user is intact.
	if r := do(t, "POST", "/api:x/auth/login", map[string]string{"email": "first@example.com", "password": "secret123"}); r.status != 200 {
		t.Fatalf("login after hostile input: %d %s", r.status, r.body)
	}
}

// checkEnvelope requires status and a Xano error envelope with message
// (any message when empty).
func checkEnvelope(t *testing.T, r result, status int, message string) {
	t.Helper()
	if r.status >= 500 {
		t.Fatalf("server error %d: %s", r.status, r.body)
	}
	if r.status != status {
		t.Fatalf("status %d, want %d: %.300s", r.status, status, r.body)
	}
	var env struct {
		Code    *string         `json:"code"`
		Message *string         `json:"message"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(r.body), &env); err != nil || env.Code == nil || env.Message == nil || env.Payload == nil {
		t.Fatalf("not a Xano envelope: %.300s", r.body)
	}
	if !strings.HasPrefix(*env.Code, "ERROR_CODE_") || *env.Message == "" {
		t.Fatalf("envelope %s", r.body)
	}
	if message != "" && *env.Message != message {
		t.Fatalf("message %q, want %q", *env.Message, message)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
}

// rawStatus writes a raw HTTP/1.1 request (for what net/http clients
// refuse to send) and returns the status code of the answer.
func rawStatus(t *testing.T, raw string) int {
	t.Helper()
	status, _ := rawExchange(t, raw)
	return status
}
