package xanoauth

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzCaddyfile feeds arbitrary text to the parsers of the `xano` global
// option, `xano_auth` and `xano_guard` (kind selects which, by its value
// mod 3). Nothing may panic; what parses must encode as JSON, and a
// rate_limit block the parser accepted must also build.
//
// The tokens come from caddyfile.Tokenize rather than NewTestDispenser,
// which calls log.Fatal on text the lexer rejects (an unclosed quote) and
// would end the fuzzing process instead of skipping the input.
func FuzzCaddyfile(f *testing.F) {
	f.Add(uint8(0), "{\n\tstorage bbolt /tmp/x.db {\n\t\tlock_timeout 1s\n\t}\n\ttable user {\n\t\tpassword {\n\t\t\tmin_length 8\n\t\t}\n\t}\n}")
	f.Add(uint8(0), "{\n\trate_limit {\n\t\tlogin_ip 5 1m\n\t\tsignup_ip off\n\t}\n}")
	f.Add(uint8(1), "{\n\ttable user\n\tmax_body 1MiB\n\tcors off\n}")
	f.Add(uint8(2), "{\n\toptional ignore_invalid\n\trequire extras.role admin\n\theader X-User-Id id\n}")
	f.Add(uint8(2), "{\n\t{\n}\n}}")

	f.Fuzz(func(t *testing.T, kind uint8, text string) {
		name := [...]string{"xano", "xano_auth", "xano_guard"}[kind%3]
		tokens, err := caddyfile.Tokenize([]byte(name+" "+text), "Fuzzfile")
		if err != nil {
			return
		}
		d := caddyfile.NewDispenser(tokens)
		var v any
		switch kind % 3 {
		case 0:
			a := new(App)
			if err := a.UnmarshalCaddyfile(d); err != nil {
				return
			}
			_, keys, err := a.RateLimit.limits()
			if err != nil {
				t.Fatalf("rate_limit parsed but does not build: %v", err)
			}
			releaseLimiters(keys)
			v = a
		case 1:
			ah := new(AuthHandler)
			if ah.UnmarshalCaddyfile(d) != nil {
				return
			}
			v = ah
		case 2:
			gh := new(GuardHandler)
			if gh.UnmarshalCaddyfile(d) != nil {
				return
			}
			v = gh
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("parsed config does not encode: %v", err)
		}
	})
}
