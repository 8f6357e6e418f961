package xanoauth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/xanoauth/caddy-xanoauth/handlers"
)

func TestParseAuthBrowserOptions(t *testing.T) {
	d := caddyfile.NewTestDispenser(`xano_auth {
		cookie session {
			same_site strict
			secure on
			domain example.com
			path /app
		}
		login_page /login
		logout_page /bye
		login_template /etc/caddy/login.html
	}`)
	a := new(AuthHandler)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(a)
	want := `{"cookie":{"name":"session","same_site":"strict","secure":"on","domain":"example.com","path":"/app"},` +
		`"login_page":{"path":"/login","logout_path":"/bye","template":"/etc/caddy/login.html"}}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if err := a.validateBrowser(); err != nil {
		t.Fatal(err)
	}

	// The short forms: defaults everywhere.
	a = new(AuthHandler)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("xano_auth {\n\tcookie\n\tlogin_page\n}")); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(a); string(got) != `{"cookie":{},"login_page":{}}` {
		t.Fatalf("short forms: %s", got)
	}
}

func TestParseGuardRedirect(t *testing.T) {
	g := new(GuardHandler)
	if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser("xano_guard {\n\tredirect /login\n}")); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(g); string(got) != `{"redirect":"/login"}` {
		t.Fatalf("got %s", got)
	}
}

func TestParseBrowserErrorsCarryFileAndLine(t *testing.T) {
	cases := []struct {
		name, input, wantErr string
		parse                func(*caddyfile.Dispenser) error
	}{
		{"duplicate cookie", "xano_auth {\n\tcookie\n\tcookie other\n}", "Testfile:3", authParse},
		{"cookie with two names", "xano_auth {\n\tcookie a b\n}", "Testfile:2", authParse},
		{"unknown cookie option", "xano_auth {\n\tcookie {\n\t\thttponly off\n\t}\n}", "Testfile:3", authParse},
		{"duplicate cookie option", "xano_auth {\n\tcookie {\n\t\tsecure on\n\t\tsecure off\n\t}\n}", "Testfile:4", authParse},
		{"bad same_site", "xano_auth {\n\tcookie {\n\t\tsame_site loose\n\t}\n}", "Testfile:3", authParse},
		{"bad secure", "xano_auth {\n\tcookie {\n\t\tsecure maybe\n\t}\n}", "Testfile:3", authParse},
		{"relative cookie path", "xano_auth {\n\tcookie {\n\t\tpath app\n\t}\n}", "Testfile:3", authParse},
		{"cookie option without value", "xano_auth {\n\tcookie {\n\t\tdomain\n\t}\n}", "Testfile:3", authParse},
		{"duplicate login_page", "xano_auth {\n\tlogin_page /a\n\tlogin_page /b\n}", "Testfile:3", authParse},
		{"login_page not a path", "xano_auth {\n\tlogin_page //evil.com\n}", "Testfile:2", authParse},
		{"login_page two args", "xano_auth {\n\tlogin_page /a /b\n}", "Testfile:2", authParse},
		{"logout_page missing", "xano_auth {\n\tlogout_page\n}", "Testfile:2", authParse},
		{"logout_page absolute URL", "xano_auth {\n\tlogout_page https://x.example/out\n}", "Testfile:2", authParse},
		{"duplicate login_template", "xano_auth {\n\tlogin_template a\n\tlogin_template b\n}", "Testfile:3", authParse},
		{"redirect missing", "xano_guard {\n\tredirect\n}", "Testfile:2", guardParse},
		{"duplicate redirect", "xano_guard {\n\tredirect /a\n\tredirect /b\n}", "Testfile:3", guardParse},
		{"redirect protocol-relative", "xano_guard {\n\tredirect //evil.com/login\n}", "Testfile:2", guardParse},
		{"redirect scheme", "xano_guard {\n\tredirect javascript:alert(1)\n}", "Testfile:2", guardParse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.parse(caddyfile.NewTestDispenser(c.input))
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one mentioning %s", err, c.wantErr)
			}
		})
	}
}

func TestValidateBrowserJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		ah   AuthHandler
	}{
		{"bad cookie name", AuthHandler{Cookie: &CookieConfig{Name: "a b"}}},
		{"bad same_site", AuthHandler{Cookie: &CookieConfig{SameSite: "loose"}}},
		{"none without secure", AuthHandler{Cookie: &CookieConfig{SameSite: "none", Secure: "off"}}},
		{"injected attribute", AuthHandler{Cookie: &CookieConfig{Domain: "x.com; Secure=false"}}},
		{"logout page without login page path", AuthHandler{LoginPage: &LoginPageConfig{LogoutPath: "/bye"}}},
		{"logout page is the login page", AuthHandler{LoginPage: &LoginPageConfig{Path: "/login", LogoutPath: "/login"}}},
		{"login page not a path", AuthHandler{LoginPage: &LoginPageConfig{Path: "https://evil/"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.ah.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := (&GuardHandler{Redirect: "//evil"}).Validate(); err == nil {
		t.Fatal("guard redirect //evil accepted")
	}
}

func TestBrowserBuild(t *testing.T) {
	ah := &AuthHandler{Cookie: &CookieConfig{SameSite: "none", Secure: "on", Name: "s"}}
	b, err := ah.browser()
	if err != nil || b.Page != nil || b.Cookie.Name != "s" || b.Cookie.Secure != handlers.SecureOn || b.Cookie.SameSite != 4 /* http.SameSiteNoneMode */ {
		t.Fatalf("%+v %v", b, err)
	}
	if b, _ := (&AuthHandler{}).browser(); b != nil {
		t.Fatal("browser features on without configuration")
	}

	file := filepath.Join(t.TempDir(), "login.html")
	os.WriteFile(file, []byte(`<p>{{.Error}}</p>`), 0o600)
	b, err = (&AuthHandler{LoginPage: &LoginPageConfig{Template: file}}).browser()
	if err != nil || b.Page == nil || b.Page.Template == nil {
		t.Fatalf("template: %+v %v", b, err)
	}
	os.WriteFile(file, []byte(`<p>{{.Error</p>`), 0o600)
	if _, err := (&AuthHandler{LoginPage: &LoginPageConfig{Template: file}}).browser(); err == nil || !strings.Contains(err.Error(), "login_template") {
		t.Fatalf("broken template accepted: %v", err)
	}
	if _, err := (&AuthHandler{LoginPage: &LoginPageConfig{Template: file + ".missing"}}).browser(); err == nil {
		t.Fatal("missing template accepted")
	}
}

func TestGuardReadsSessionCookieByDefault(t *testing.T) {
	if got := guardCookies(nil); len(got) != 1 || got[0] != "xano_auth" {
		t.Fatalf("%v", got)
	}
	in := []string{"ww-auth-access-token", "AuthToken"}
	got := guardCookies(in)
	if strings.Join(got, ",") != "ww-auth-access-token,AuthToken,xano_auth" || len(in) != 2 {
		t.Fatalf("%v (input %v)", got, in)
	}
	if got := guardCookies([]string{"xano_auth", "a"}); strings.Join(got, ",") != "xano_auth,a" {
		t.Fatalf("%v", got)
	}
}
