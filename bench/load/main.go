// Command load is xanoauth's HTTP load generator: a fixed number of
// concurrent clients send one request shape for a fixed time against a
// loopback URL, and it prints one JSON line: requests/s, p50, p99, errors
// (plus its wall and CPU seconds).
//
//	go run ./bench/load -url http://127.0.0.1:9301/guarded -c 16 -d 5s -H "Authorization: Bearer $TOKEN"
//
// A body may contain {n}, replaced by a per-request counter (distinct
// signup emails).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	var hdrs headers
	target := flag.String("url", "", "target URL (loopback only)")
	conc := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "duration")
	method := flag.String("method", "GET", "HTTP method")
	body := flag.String("body", "", "request body; {n} becomes a counter")
	ctype := flag.String("type", "application/json", "content type of the body")
	want := flag.Int("status", 200, "status that counts as success")
	flag.Var(&hdrs, "H", "header 'Name: value' (repeatable)")
	flag.Parse()

	u, err := url.Parse(*target)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		fmt.Fprintln(os.Stderr, "load: -url must be a loopback http URL")
		os.Exit(2)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()

	var counter, errs atomic.Int64
	lat := make([][]time.Duration, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for ctx.Err() == nil {
				n := counter.Add(1)
				var rd io.Reader
				if *body != "" {
					rd = strings.NewReader(strings.ReplaceAll(*body, "{n}", strconv.FormatInt(n, 10)))
				}
				req, _ := http.NewRequestWithContext(ctx, *method, *target, rd)
				if rd != nil {
					req.Header.Set("Content-Type", *ctype)
				}
				for _, h := range hdrs {
					if k, v, ok := strings.Cut(h, ":"); ok {
						req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
					}
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				var sink bytes.Buffer
				_, _ = io.Copy(&sink, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != *want {
					errs.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
	}
	// The generator's own CPU time, so that a script can tell how much
	// of the machine other processes took during the run.
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	out, _ := json.Marshal(map[string]any{
		"ok": len(all), "errors": errs.Load(), "rps": float64(len(all)) / elapsed.Seconds(),
		"p50_ms": pct(0.50), "p99_ms": pct(0.99),
		"elapsed_s": elapsed.Seconds(), "cpu_s": cpu.Seconds(),
	})
	fmt.Println(string(out))
}
