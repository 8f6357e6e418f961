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
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
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
	if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		fmt.Fprintln(os.Stderr, "load: -url must be a loopback http URL")
		os.Exit(2)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	render := renderHead(*method, u, hdrs, *ctype, *body)

	var counter, errs atomic.Int64
	lat := make([][]time.Duration, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(*dur)
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &conn{addr: addr}
			defer func() {
				if c.nc != nil {
					c.nc.Close()
				}
			}()
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				req := render(counter.Add(1))
				deadline := t0.Add(10 * time.Second)
				if end.Before(deadline) {
					deadline = end
				}
				status, err := c.do(req, deadline)
				if err != nil {
					if time.Now().Before(end) {
						errs.Add(1)
					}
					continue
				}
				if status != *want {
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
