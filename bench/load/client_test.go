package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnAgainstNetHTTP drives one conn through the response shapes a
// Go server produces (fixed length, chunked, no body, closing) and checks
// that each exchange reads exactly one response, so the next one on the
// same connection starts in the right place, and that the request the
// server saw is the one rendered.
func TestConnAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer t" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
			return
		}
		switch r.URL.Query().Get("shape") {
		case "chunked":
			w.WriteHeader(201)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
		case "empty":
			w.WriteHeader(204)
		case "close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write(body)
		default:
			_, _ = w.Write(body)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := &conn{addr: strings.TrimPrefix(srv.URL, "http://")}
	for i, step := range []struct {
		shape string
		want  int
	}{
		{"fixed", 200}, {"chunked", 201}, {"fixed", 200}, {"empty", 204},
		{"close", 200}, {"fixed", 200}, {"chunked", 201},
	} {
		u, _ := url.Parse(srv.URL + "/x?shape=" + step.shape)
		render := renderHead("POST", u, []string{"Authorization: Bearer t"}, "application/json", `{"n":{n}}`)
		status, err := c.do(render(int64(i)), time.Now().Add(5*time.Second))
		if err != nil || status != step.want {
			t.Fatalf("step %d (%s): status %d, %v; want %d", i, step.shape, status, err, step.want)
		}
	}
	// One connection until the server closed it, then one more.
	if got := conns.Load(); got != 2 {
		t.Fatalf("%d connections, want 2", got)
	}
}

func TestReadResponseMalformed(t *testing.T) {
	for _, in := range []string{
		"garbage\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		if _, _, err := readResponse(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
