package password

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyCheck(t *testing.T) {
	const (
		tooShort8   = "Input does not meet minimum length requirement of 8 characters"
		tooLong1024 = "Input exceeds maximum length of 1024 characters"
		noDigits1   = "Weak password detected. Please use at least 1 numbers."
		noLetters1  = "Weak password detected. Please use at least 1 letters."
	)
	tests := []struct {
		name   string
		policy Policy
		pw     string
		want   string // "" means no error
	}{
		{"ok", DefaultPolicy, "password1", ""},
		{"ok exactly min", DefaultPolicy, "passwo1d", ""},
		{"empty", DefaultPolicy, "", tooShort8},
		{"too short", DefaultPolicy, "pass1", tooShort8},
		{"one short", DefaultPolicy, "passwo1", tooShort8},
		{"too short wins over no digits", DefaultPolicy, "abc", tooShort8},
		{"no digits", DefaultPolicy, "abcdefgh", noDigits1},
		{"no letters", DefaultPolicy, "12345678", noLetters1},
		{"no digits wins over no letters", DefaultPolicy, "!!!!!!!!", noDigits1},
		{"unicode letters", DefaultPolicy, "pässwörd1", ""},
		{"non-latin letters", DefaultPolicy, "пароль12", ""},
		{"unicode digits", DefaultPolicy, "password٣", ""}, // Arabic-Indic three
		// 7 runes but 14 bytes: length is counted in characters.
		{"runes not bytes short", DefaultPolicy, "äöüäöü1", tooShort8},
		{"runes not bytes ok", DefaultPolicy, "äöüäöüä1", ""},
		{"max ok", DefaultPolicy, "a1" + strings.Repeat("x", 1022), ""},
		{"max exceeded", DefaultPolicy, "a1" + strings.Repeat("x", 1023), tooLong1024},
		// 600 runes, 1200 bytes: the maximum is counted in bytes.
		{"max in bytes", DefaultPolicy, "a1" + strings.Repeat("ä", 599), tooLong1024},
		{"too long wins over no digits", DefaultPolicy, strings.Repeat("x", 1025), tooLong1024},
		{"custom min length", Policy{MinLength: 12}, "short", "Input does not meet minimum length requirement of 12 characters"},
		{"custom max length", Policy{MaxLength: 10}, "abcdefghijk", "Input exceeds maximum length of 10 characters"},
		{"custom max ok", Policy{MaxLength: 10}, "abcdefghij", ""},
		{"custom digits", Policy{MinDigits: 3}, "abc12", "Weak password detected. Please use at least 3 numbers."},
		{"custom letters", Policy{MinLetters: 2}, "a123", "Weak password detected. Please use at least 2 letters."},
		{"custom digits ok", Policy{MinDigits: 3}, "1a2b3", ""},
		{"zero policy allows empty", Policy{}, "", ""},
		{"zero policy still caps length", Policy{}, strings.Repeat("x", 1025), tooLong1024},
		{"negative max means default", Policy{MaxLength: -1}, strings.Repeat("x", 1024), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.pw)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Check = %q, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Check = %q, want %q", err.Error(), tt.want)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Message != tt.want {
				t.Errorf("Check error %T is not a *PolicyError with the message", err)
			}
			if tt.pw != "" && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("error contains the password")
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	want := Policy{MinLength: 8, MinLetters: 1, MinDigits: 1}
	if DefaultPolicy != want {
		t.Errorf("DefaultPolicy = %+v, want %+v", DefaultPolicy, want)
	}
}
