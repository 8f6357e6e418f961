package handlers

import (
	"testing"
)

func TestDecodeJSONObject(t *testing.T) {
	for _, c := range []struct {
		name, body string
		key        string // checked with Text when set
		want       string // Text's value, or the error message
		err        bool
	}{
		{"plain", `{"name":"Ann"}`, "name", "Ann", false},
		{"surrogate pair", `{"name":"\ud83d\ude00"}`, "name", "😀", false},
		{"literal replacement char", "{\"name\":\"\uFFFD\"}", "name", "\uFFFD", false},
		{"escaped backslash then u", `{"name":"\\ud800"}`, "name", `\ud800`, false},
		{"lone high surrogate", `{"name":"a\ud800b"}`, "name", MsgNotText, true},
		{"high surrogate at end", `{"name":"a\ud800"}`, "name", MsgNotText, true},
		{"lone low surrogate", `{"name":"\udc00"}`, "name", MsgNotText, true},
		{"high then non-low", `{"name":"\ud800\u0041"}`, "name", MsgNotText, true},
		{"invalid UTF-8", "{\"name\":\"a\xffb\"}", "name", MsgNotText, true},
		{"truncated UTF-8", "{\"name\":\"\xe2\x82\"}", "name", MsgNotText, true},
		{"bad text in an ignored key is ignored", "{\"x\":\"\xff\",\"name\":\"Ann\"}", "name", "Ann", false},
		{"nested duplicates are not ours to judge", `{"x":{"a":1,"a":2},"name":"Ann"}`, "name", "Ann", false},
	} {
		obj, e := decodeJSONObject([]byte(c.body))
		if e != nil {
			t.Errorf("%s: %v", c.name, e)
			continue
		}
		s, _, e := Input(obj).Text(c.key)
		switch {
		case c.err && (e == nil || e.Message != c.want || e.Param != c.key):
			t.Errorf("%s: Text = %q, %v; want error %q", c.name, s, e, c.want)
		case !c.err && (e != nil || s != c.want):
			t.Errorf("%s: Text = %q, %v; want %q", c.name, s, e, c.want)
		}
	}
	for _, c := range []struct{ name, body, msg, param string }{
		{"duplicate key", `{"email":"a@b.co","email":"c@d.co"}`, "Duplicate param: email", "email"},
		{"duplicate after escapes", `{"email":"a@b.co","em\u0061il":"c@d.co"}`, "Duplicate param: email", "email"},
		{"not an object", `["a"]`, MsgBadJSON, ""},
		{"null", `null`, MsgBadJSON, ""},
		{"trailing data", `{"a":1} x`, MsgBadJSON, ""},
		{"second object", `{"a":1}{"b":2}`, MsgBadJSON, ""},
		{"too deep", `{"a":` + repeat("[", 10000) + repeat("]", 10000) + `}`, MsgBadJSON, ""},
		{"unterminated", `{"a":"b`, MsgBadJSON, ""},
		{"empty", ``, MsgBadJSON, ""},
	} {
		_, e := decodeJSONObject([]byte(c.body))
		if e == nil || e.Status != 400 || e.Message != c.msg || e.Param != c.param {
			t.Errorf("%s: %v, want 400 %q (param %q)", c.name, e, c.msg, c.param)
		}
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}
