package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// notText stands for a JSON string value that is not clean text: invalid
// UTF-8 or an unpaired surrogate escape ("\ud800"). encoding/json would
// silently turn either into U+FFFD, so a signup could store an email or a
// name that differs from what was sent; Input.Text refuses it instead, as
// it refuses NUL bytes, naming the input.
type notText struct{}

// decodeJSONObject parses a JSON object body, keeping numbers exact. On top
// of encoding/json's checks (syntax, 10,000 levels of nesting) it refuses
// a key that appears twice: parsers disagree on which value wins (ours
// takes the last, others the first), and a proxy or WAF that inspected
// the other one must not be fooled.
func decodeJSONObject(body []byte) (map[string]any, *Error) {
	if !json.Valid(body) { // syntax and nesting depth of the whole body first
		return nil, inputError("", MsgBadJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep numbers exactly as sent; they may become text fields
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, inputError("", MsgBadJSON)
	}
	obj := map[string]any{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, inputError("", MsgBadJSON)
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, inputError("", MsgBadJSON)
		}
		if _, dup := obj[key]; dup {
			return nil, inputError(key, "Duplicate param: "+key)
		}
		if raw[0] == '"' && (!utf8.Valid(raw) || loneSurrogate(raw)) {
			obj[key] = notText{}
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, inputError("", MsgBadJSON)
		}
		obj[key] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, inputError("", MsgBadJSON)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, inputError("", MsgBadJSON) // trailing data after the object
	}
	return obj, nil
}

// loneSurrogate reports whether the JSON string literal s holds a \u
// escape of a UTF-16 surrogate that is not part of a high-low pair.
func loneSurrogate(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			continue
		}
		if s[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r := hex4(s, i+2)
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate first
		case r >= 0xD800 && r <= 0xDBFF:
			if i+11 >= len(s) || s[i+6] != '\\' || s[i+7] != 'u' {
				return true
			}
			if lo := hex4(s, i+8); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}

// hex4 decodes four hex digits of s at i, or returns -1.
func hex4(s []byte, i int) int {
	if i+4 > len(s) {
		return -1
	}
	n := 0
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return n
}
