package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// client opens a connection per request. Every test loads a new config
// into the same Caddy, which closes the previous server's idle
// connections; a kept-alive connection picked up just then fails a POST
// with EOF (Go retries only idempotent requests on a stale connection),
// which CI once hit at a test's first signup.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// send is the one HTTP client of these tests: method on url (an absolute
// URL, or a path on base), body sent as is with contentType when non-nil,
// headers as name/value pairs. Each request is bounded in time.
func send(t *testing.T, method, url, contentType string, body []byte, headers ...string) result {
	t.Helper()
	if strings.HasPrefix(url, "/") {
		url = base + url
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil && body == nil && (method == "GET" || method == "HEAD") && errors.Is(err, io.EOF) {
		// A connection that the old server of a config just replaced
		// accepted before it shut down can be closed unanswered (seen
		// once in CI right after a reload). Browsers retry an idempotent
		// request on such a connection; so does this client, once.
		time.Sleep(50 * time.Millisecond)
		req, _ = http.NewRequestWithContext(ctx, method, url, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err = client.Do(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, string(b)}
}

// do sends body JSON-encoded (none when nil) to a path on base.
func do(t *testing.T, method, path string, body any, headers ...string) result {
	t.Helper()
	if body == nil {
		return send(t, method, path, "", nil, headers...)
	}
	b, _ := json.Marshal(body)
	return send(t, method, path, "application/json", b, headers...)
}

// post sends body JSON-encoded to an absolute URL.
func post(t *testing.T, url string, body any, headers ...string) result {
	t.Helper()
	b, _ := json.Marshal(body)
	return send(t, "POST", url, "application/json", b, headers...)
}

// rawPost sends body with a content type as is (no JSON encoding).
func rawPost(t *testing.T, path, contentType string, body []byte, headers ...string) result {
	t.Helper()
	return send(t, "POST", path, contentType, body, headers...)
}
