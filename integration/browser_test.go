package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestLoginPageCookieAndGuardRedirect runs the browser flow through Caddy
// from a Caddyfile: the guard redirects a navigation to the login page, the
// form logs in (303 + session cookie), the guard reads the session cookie
// without configuration, and the page logout ends it.
func TestLoginPageCookieAndGuardRedirect(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
	}
}
http://localhost:9080 {
	@auth path /api:* /login /login/logout
	xano_auth @auth {
		login_page /login
	}
	xano_guard /members/* {
		redirect /login
	}
	respond "member {http.auth.user.id}"
}`, globals, filepath.Join(t.TempDir(), "browser.db")), "caddyfile")

	if r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "b@example.com", "password": "secret123"}); r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, headers ...string) *http.Response {
		req, _ := http.NewRequest("GET", base+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const html = "text/html,application/xhtml+xml,*/*;q=0.8"

	// A navigation is redirected; an API call is not.
	resp := get("/members/page?x=1", "Accept", html, "Sec-Fetch-Mode", "navigate")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/login?return=%2Fmembers%2Fpage%3Fx%3D1" {
		t.Fatalf("navigation: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if r := do(t, "GET", "/members/page", nil, "Accept", "application/json"); r.status != 401 {
		t.Fatalf("API call: %d", r.status)
	}

	// The login page, and its form.
	req, _ := http.NewRequest("GET", base+"/login?return=%2Fmembers%2Fpage%3Fx%3D1", nil)
	req.Header.Set("Accept", html)
	pageResp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(pageResp.Body)
	pageResp.Body.Close()
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(page)
	var csrf *http.Cookie
	for _, c := range pageResp.Cookies() {
		if c.Name == "xano_csrf" {
			csrf = c
		}
	}
	if pageResp.StatusCode != 200 || m == nil || csrf == nil {
		t.Fatalf("login page: %d %s", pageResp.StatusCode, page)
	}
	form := url.Values{"email": {"b@example.com"}, "password": {"secret123"}, "_csrf": {string(m[1])}, "_form": {"1"}, "return": {"/members/page?x=1"}}
	req, _ = http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", html)
	req.Header.Set("Origin", base)
	req.AddCookie(csrf)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "xano_auth" {
			session = c
		}
	}
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/members/page?x=1" || session == nil || session.Secure || !session.HttpOnly {
		t.Fatalf("form login: %d %v", resp.StatusCode, resp.Header)
	}

	// The guard reads the session cookie with no `cookie` line.
	if r := do(t, "GET", "/members/page", nil, "Cookie", "xano_auth="+session.Value); r.status != 200 || r.body != "member 1" {
		t.Fatalf("with the session cookie: %d %s", r.status, r.body)
	}

	// Page logout: revoked and cleared.
	resp = get("/login/logout", "Sec-Fetch-Site", "same-origin", "Cookie", "xano_auth="+session.Value)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?logged_out=1" || !strings.Contains(resp.Header.Get("Set-Cookie"), "xano_auth=; Path=/; Max-Age=0") {
		t.Fatalf("logout: %d %v", resp.StatusCode, resp.Header)
	}
	if r := do(t, "GET", "/members/page", nil, "Cookie", "xano_auth="+session.Value); r.status != 401 {
		t.Fatalf("after logout: %d %s", r.status, r.body)
	}
}
