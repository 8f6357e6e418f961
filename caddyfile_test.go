package xanoauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestParseGlobalOption(t *testing.T) {
	d := caddyfile.NewTestDispenser(`xano {
		storage bbolt /var/lib/caddy/xano.db {
			lock_timeout 5s
		}
		key {env.XANO_AUTH_KEY}
		key {file./etc/old.key}
		data_sources live test
		leeway 2s
		hash_concurrency 3
		hash_concurrency_busy 2
		table user {
			fields name company
			extras role
			default role member
			token_ttl 1h
			signup open
			password {
				min_length 10
				min_letters 0
			}
		}
		table admin {
			signup closed
		}
	}`)
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(app)
	want := `{"storage":{"type":"bbolt","path":"/var/lib/caddy/xano.db","lock_timeout":5000000000},` +
		`"keys":["{env.XANO_AUTH_KEY}","{file./etc/old.key}"],"data_sources":["live","test"],` +
		`"tables":{"admin":{"signup":"closed"},"user":{"fields":["name","company"],"extras":["role"],"defaults":{"role":"member"},` +
		`"token_ttl":3600000000000,"signup":"open","password":{"min_length":10,"min_letters":0}}},` +
		`"leeway":2000000000,"hash_concurrency":3,"hash_concurrency_busy":2}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestParseErrorsCarryFileAndLine(t *testing.T) {
	cases := []struct {
		name, input, wantErr string
		parse                func(*caddyfile.Dispenser) error
	}{
		{"unknown global option", "xano {\n\tbogus 1\n}", "Testfile:2", globalParse},
		{"duplicate global option", "xano {\n\tleeway 1s\n\tleeway 2s\n}", "Testfile:3", globalParse},
		{"duplicate table", "xano {\n\ttable a\n\ttable a\n}", "Testfile:3", globalParse},
		{"unknown table option", "xano {\n\ttable a {\n\t\tcolor red\n\t}\n}", "Testfile:3", globalParse},
		{"duplicate table option", "xano {\n\ttable a {\n\t\tsignup open\n\t\tsignup closed\n\t}\n}", "Testfile:4", globalParse},
		{"bad signup value", "xano {\n\ttable a {\n\t\tsignup maybe\n\t}\n}", "Testfile:3", globalParse},
		{"unknown password option", "xano {\n\ttable a {\n\t\tpassword {\n\t\t\tmin_upper 1\n\t\t}\n\t}\n}", "Testfile:4", globalParse},
		{"bad duration", "xano {\n\tleeway soon\n}", "Testfile:2", globalParse},
		{"unknown auth option", "xano_auth {\n\tbogus\n}", "Testfile:2", authParse},
		{"duplicate auth option", "xano_auth {\n\ttable a\n\ttable b\n}", "Testfile:3", authParse},
		{"bad max_body", "xano_auth {\n\tmax_body lots\n}", "Testfile:2", authParse},
		{"unknown guard option", "xano_guard {\n\tbogus\n}", "Testfile:2", guardParse},
		{"duplicate guard table", "xano_guard {\n\ttable a\n\ttable b\n}", "Testfile:3", guardParse},
		{"bad optional argument", "xano_guard {\n\toptional maybe\n}", "Testfile:2", guardParse},
		{"require without value", "xano_guard {\n\trequire extras.role\n}", "Testfile:2", guardParse},
		{"duplicate header", "xano_guard {\n\theader X-A id\n\theader X-A table\n}", "Testfile:3", guardParse},
		{"duplicate header in another case", "xano_guard {\n\theader X-User-Id id\n\theader x-user-id extras.role\n}", "Testfile:3", guardParse},
		{"zero token_ttl", "xano {\n\ttable a {\n\t\ttoken_ttl 0\n\t}\n}", "Testfile:3", globalParse},
		{"zero refresh_grace", "xano {\n\ttable a {\n\t\trefresh_grace 0s\n\t}\n}", "Testfile:3", globalParse},
		{"zero sweep_interval", "xano {\n\tsweep_interval 0\n}", "Testfile:2", globalParse},
		{"cors wildcard", "xano_auth {\n\tcors *\n}", "Testfile:2", authParse},
		{"cors with a path", "xano_auth {\n\tcors https://app.example.com/\n}", "Testfile:2", authParse},
		{"cors without scheme", "xano_auth {\n\tcors app.example.com\n}", "Testfile:2", authParse},
		{"cors in upper case", "xano_auth {\n\tcors https://App.Example.com\n}", "Testfile:2", authParse},
		{"cors off among origins", "xano_auth {\n\tcors off https://a.example\n}", "Testfile:2", authParse},
		{"argument on directive", "xano_guard extra", "Testfile:1", guardParse},
		{"bad cache mode", "xano_guard {\n\tcache public\n}", "Testfile:2", guardParse},
		{"bad preflight mode", "xano_guard {\n\tpreflight pass\n}", "Testfile:2", guardParse},
		{"session_cookie on", "xano_guard {\n\tsession_cookie on\n}", "Testfile:2", guardParse},
		{"csrf origin with a path", "xano_guard {\n\tcsrf https://a.example/x\n}", "Testfile:2", guardParse},
		{"csrf off and origins", "xano_guard {\n\tcsrf https://a.example\n\tcsrf off\n}", "Testfile:3", guardParse},
		{"data_source without name", "xano_guard {\n\tdata_source\n}", "Testfile:2", guardParse},
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

func globalParse(d *caddyfile.Dispenser) error { return new(App).UnmarshalCaddyfile(d) }
func authParse(d *caddyfile.Dispenser) error   { return new(AuthHandler).UnmarshalCaddyfile(d) }
func guardParse(d *caddyfile.Dispenser) error  { return new(GuardHandler).UnmarshalCaddyfile(d) }

func TestParseGuard(t *testing.T) {
	d := caddyfile.NewTestDispenser(`xano_guard {
		table user admin
		optional ignore_invalid
		require extras.role admin editor
		require table admin
		cookie ww-auth-access-token
		cookie AuthToken
		header X-User-Id id
	}`)
	g := new(GuardHandler)
	if err := g.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(g)
	want := `{"tables":["user","admin"],"optional":true,"ignore_invalid":true,` +
		`"require":[{"claim":"extras.role","values":["admin","editor"]},{"claim":"table","values":["admin"]}],` +
		`"cookies":["ww-auth-access-token","AuthToken"],"headers":{"X-User-Id":"id"}}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	d = caddyfile.NewTestDispenser(`xano_guard {
		data_source live test
		session_cookie off
		cache no_store
		preflight forward
		csrf https://admin.example.com
		csrf https://www.example.com
	}`)
	g = new(GuardHandler)
	if err := g.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ = json.Marshal(g)
	want = `{"ignore_session_cookie":true,"data_sources":["live","test"],"cache":"no_store","preflight":"forward",` +
		`"csrf_origins":["https://admin.example.com","https://www.example.com"]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	d = caddyfile.NewTestDispenser("xano_guard {\n\tcsrf off\n}")
	g = new(GuardHandler)
	if err := g.UnmarshalCaddyfile(d); err != nil || !g.CSRFOff {
		t.Fatalf("csrf off: %v %+v", err, g)
	}
}

func TestParseAuth(t *testing.T) {
	d := caddyfile.NewTestDispenser(`xano_auth {
		table admin
		max_body 1MiB
		access_token
		cors https://a.example https://b.example
	}`)
	a := new(AuthHandler)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(a)
	want := `{"table":"admin","max_body_size":1048576,"access_token":true,"cors_origins":["https://a.example","https://b.example"]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestAdaptCaddyfile checks the directives' registration and order through
// Caddy's real adapter: xano_auth must come before xano_guard, and both
// before the handlers that serve content, with no `order` line.
func TestAdaptCaddyfile(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warns, err := adapter.Adapt([]byte(`{
	xano {
		table user {
			extras role
		}
	}
}

:8080 {
	respond "hi"
	xano_guard /members/*
	reverse_proxy /app/* localhost:9
	xano_auth /api:*
}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns)
	}
	s := string(out)
	if !strings.Contains(s, `"apps":{"http"`) && !strings.Contains(s, `"xano":{`) {
		t.Fatalf("no xano app in %s", s)
	}
	if !strings.Contains(s, `"xano":{"tables":{"user":{"extras":["role"]}}}`) {
		t.Fatalf("xano app not adapted: %s", s)
	}
	ia, ig := strings.Index(s, `"handler":"xano_auth"`), strings.Index(s, `"handler":"xano_guard"`)
	ip, ir := strings.Index(s, `"handler":"reverse_proxy"`), strings.Index(s, `"handler":"static_response"`)
	if ia < 0 || ig < 0 || ip < 0 || ir < 0 || !(ia < ig && ig < ip && ig < ir) {
		t.Fatalf("handler order wrong (auth %d, guard %d, proxy %d, respond %d): %s", ia, ig, ip, ir, s)
	}
}

// TestDuplicateGlobalBlock: Caddy keeps the last of two `xano` blocks, so
// the first's settings would vanish without a word (a `signup closed`
// turned open); the second is an error instead.
func TestDuplicateGlobalBlock(t *testing.T) {
	input := "{\n\txano {\n\t\ttable user {\n\t\t\tsignup closed\n\t\t}\n\t}\n\txano {\n\t\tleeway 1s\n\t}\n}\n:8080 {\n\trespond ok\n}\n"
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("two xano blocks: %v, want an error", err)
	}
}
