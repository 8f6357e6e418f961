package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection driven by one goroutine:
// write a request, read its response, repeat.
//
// net/http's client hands every request from the caller's goroutine to
// the connection's write loop and the response back from its read loop:
// three goroutine wake-ups per request, and on the 2-CPU virtual machine
// of the load runs the generator spent 0.5–0.6 ms of CPU per request,
// mostly in futex and scheduler calls, on the CPUs it shares with the
// server it measures (wrk took a quarter of that and saw 8–21 % more
// logins/s). Here a request costs one write and the reads its response
// needs, in the goroutine that counts it.
type conn struct {
	addr string
	nc   net.Conn
	br   *bufio.Reader
}

// request is a pre-rendered request: head up to the blank line that ends
// the headers, then the body.
type request struct {
	head, body []byte
}

// renderHead renders method, target and headers once, and returns what
// renders request n. Only a body with {n} differs between requests, and
// only then is each request rendered anew.
func renderHead(method string, u *url.URL, hdrs []string, ctype string, body string) func(n int64) request {
	var h bytes.Buffer
	fmt.Fprintf(&h, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: xanoauth-bench-load\r\n", method, u.RequestURI(), u.Host)
	for _, kv := range hdrs {
		if k, v, ok := strings.Cut(kv, ":"); ok {
			fmt.Fprintf(&h, "%s: %s\r\n", strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	fixed := h.Bytes()
	withBody := func(b string) request {
		head := slices.Clip(fixed)
		if b != "" {
			head = append(head, "Content-Type: "+ctype+"\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n"...)
		}
		return request{head: append(head, "\r\n"...), body: []byte(b)}
	}
	if !strings.Contains(body, "{n}") {
		r := withBody(body)
		return func(int64) request { return r }
	}
	return func(n int64) request { return withBody(strings.ReplaceAll(body, "{n}", strconv.FormatInt(n, 10))) }
}

// do sends r and reads the response to its end, returning its status. A
// connection that failed, or that the server closes, is dropped and
// redialled on the next call. deadline bounds the whole exchange.
func (c *conn) do(r request, deadline time.Time) (int, error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, time.Until(deadline))
		if err != nil {
			return 0, err
		}
		c.nc, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	}
	status, keep, err := c.exchange(r, deadline)
	if err != nil || !keep {
		c.nc.Close()
		c.nc = nil
	}
	return status, err
}

func (c *conn) exchange(r request, deadline time.Time) (status int, keep bool, err error) {
	if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	bufs := net.Buffers{r.head, r.body}
	if _, err := bufs.WriteTo(c.nc); err != nil {
		return 0, false, err
	}
	return readResponse(c.br)
}

var errMalformed = errors.New("malformed response")

// readResponse reads one HTTP/1.1 response from br and discards its
// body: Content-Length, chunked, or (with Connection: close) to EOF.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errMalformed
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, errMalformed
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
				return 0, false, errMalformed
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(v, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	switch {
	case status == 204 || status == 304 || status/100 == 1:
		return status, keep, nil
	case chunked:
		return status, keep, discardChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
		return status, keep, err
	default: // the body runs to the end of the connection
		_, err = io.Copy(io.Discard, br)
		return status, false, err
	}
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil || n < 0 {
			return errMalformed
		}
		if n == 0 {
			for { // trailers, up to the blank line
				line, err = br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
