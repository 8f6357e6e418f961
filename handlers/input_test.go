package handlers

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestInputText(t *testing.T) {
	in := Input{
		"s": "text", "n": json.Number("42"), "b": true, "null": nil,
		"arr": []any{"x"}, "obj": map[string]any{}, "bad": "\xff\xfe", "nul": "a\x00b",
	}
	for key, want := range map[string]string{"s": "text", "n": "42", "b": "true"} {
		if got, ok, e := in.Text(key); got != want || !ok || e != nil {
			t.Fatalf("%s: %q %v %v", key, got, ok, e)
		}
	}
	for _, key := range []string{"null", "missing"} {
		if _, ok, e := in.Text(key); ok || e != nil {
			t.Fatalf("%s should be absent", key)
		}
	}
	for _, key := range []string{"arr", "obj", "bad", "nul"} {
		if _, _, e := in.Text(key); e == nil || e.Param != key || e.Status != 400 {
			t.Fatalf("%s should be an input error, got %v", key, e)
		}
	}
	if _, e := in.RequiredText("missing"); e == nil || e.Message != "Missing param: missing" {
		t.Fatalf("RequiredText: %v", e)
	}
}

func TestParseInputIgnoresUnknownContentAndFirstQueryValue(t *testing.T) {
	r := httptest.NewRequest("POST", "/x?a=1&a=2", strings.NewReader("<xml/>"))
	r.Header.Set("Content-Type", "application/xml")
	in, e := ParseInput(httptest.NewRecorder(), r, 0)
	if e != nil || in["a"] != "1" {
		t.Fatalf("%v %v", in, e)
	}
	r = httptest.NewRequest("POST", "/x", strings.NewReader("not json"))
	in, e = ParseInput(httptest.NewRecorder(), r, 0)
	if e != nil || len(in) != 0 {
		t.Fatalf("plain text body: %v %v", in, e)
	}
	r = httptest.NewRequest("POST", "/x", strings.NewReader("--b\r\n"))
	r.Header.Set("Content-Type", "multipart/form-data")
	if _, e = ParseInput(httptest.NewRecorder(), r, 0); e == nil {
		t.Fatal("multipart without boundary accepted")
	}
}
