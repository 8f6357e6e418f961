package handlers

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseInput feeds arbitrary bodies, content types and query strings
// to ParseInput and to the text accessors the endpoints use. Nothing may
// panic, every error must be a 4xx in the Xano envelope, and every text it
// hands out must be valid UTF-8 without NUL bytes.
func FuzzParseInput(f *testing.F) {
	f.Add([]byte(`{"email":"a@b.co","password":"secret123"}`), "application/json", "")
	f.Add([]byte(`email=a%40b.co&password=x`), "application/x-www-form-urlencoded", "email=q@b.co")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@b.co\r\n--B--\r\n"), `multipart/form-data; boundary=B`, "")
	f.Add([]byte(`{"email":["a"],"name":{"x":1},"n":1e999,"e":"\ud800"}`), "text/plain", "")
	f.Add([]byte(`[[[[[[[[[[`), "application/json", "")
	f.Add([]byte("{\"a\":\"\x00\xff\"}"), "", "a=%00&b=%ff")

	f.Fuzz(func(t *testing.T, body []byte, contentType, query string) {
		r := httptest.NewRequest("POST", "/api:x/auth/login", bytes.NewReader(body))
		r.URL.RawQuery = query
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		in, e := ParseInput(httptest.NewRecorder(), r, 4096)
		if e != nil {
			checkEnvelope(t, e)
			return
		}
		for k := range in {
			s, _, e := in.Text(k)
			if e != nil {
				checkEnvelope(t, e)
				continue
			}
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("Text(%q) = %q: not clean text", k, s)
			}
			if _, e := in.RequiredText(k); e != nil {
				checkEnvelope(t, e)
			}
		}
	})
}

func checkEnvelope(t *testing.T, e *Error) {
	t.Helper()
	if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
		t.Fatalf("error %+v is not a 4xx in the envelope", e)
	}
	b, err := json.Marshal(e)
	if err != nil || !json.Valid(b) {
		t.Fatalf("envelope does not marshal: %v", err)
	}
}
