package password

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// defaultMaxLength is the byte limit Policy applies when MaxLength is zero.
// Hashing cost grows with input length, so some limit always applies.
const defaultMaxLength = 1024

// Policy is a password policy matching Xano's rules. A zero or negative
// MinLength, MinLetters or MinDigits disables that rule. MaxLength is always
// enforced: zero (or negative) means 1024 bytes, so an unconfigured policy
// still keeps huge inputs away from the hasher.
type Policy struct {
	// MinLength is the minimum length in characters (runes), as a user
	// counts them; Xano's default is 8.
	MinLength int
	// MinLetters is the minimum number of letters (unicode.IsLetter, so
	// "ä" counts); Xano's default is 1.
	MinLetters int
	// MinDigits is the minimum number of digits (unicode.IsDigit); Xano's
	// default is 1.
	MinDigits int
	// MaxLength is the maximum length in bytes; 1024 when zero. It is
	// counted in bytes because it guards hashing cost, which depends on
	// bytes, not characters.
	MaxLength int
}

// DefaultPolicy is Xano's default password policy: at least 8 characters,
// one letter and one digit, and at most 1024 bytes.
var DefaultPolicy = Policy{MinLength: 8, MinLetters: 1, MinDigits: 1}

// maxBytes is the maximum length in bytes p enforces.
func (p Policy) maxBytes() int {
	if p.MaxLength <= 0 {
		return defaultMaxLength
	}
	return p.MaxLength
}

// Satisfiable returns an error if no password can meet p: the shortest
// one it allows, in ASCII, must fit within its maximum length.
func (p Policy) Satisfiable() error {
	if need := max(p.MinLength, p.MinLetters+p.MinDigits); need > p.maxBytes() {
		return fmt.Errorf("password policy needs %d characters but max_length is %d", need, p.maxBytes())
	}
	return nil
}

// PolicyError reports a password that violates a Policy. Message is exactly
// the text Xano returns, so clients written against Xano see the same
// messages; it never contains the password.
type PolicyError struct {
	Message string
}

// Error returns Message.
func (e *PolicyError) Error() string { return e.Message }

// Check returns nil if pw satisfies p, or a *PolicyError carrying Xano's
// message for the first rule it breaks. Rules are checked in Xano's order:
// minimum length, maximum length, digits, letters.
func (p Policy) Check(pw string) error {
	if p.MinLength > 0 && utf8.RuneCountInString(pw) < p.MinLength {
		return &PolicyError{Message: "Input does not meet minimum length requirement of " +
			strconv.Itoa(p.MinLength) + " characters"}
	}
	maxLen := p.maxBytes()
	if len(pw) > maxLen {
		return &PolicyError{Message: "Input exceeds maximum length of " +
			strconv.Itoa(maxLen) + " characters"}
	}

	letters, digits := 0, 0
	for _, r := range pw {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsDigit(r):
			digits++
		}
	}
	if p.MinDigits > 0 && digits < p.MinDigits {
		return &PolicyError{Message: "Weak password detected. Please use at least " +
			strconv.Itoa(p.MinDigits) + " numbers."}
	}
	if p.MinLetters > 0 && letters < p.MinLetters {
		return &PolicyError{Message: "Weak password detected. Please use at least " +
			strconv.Itoa(p.MinLetters) + " letters."}
	}
	return nil
}
