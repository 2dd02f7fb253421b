// loadgen: an HTTP load generator for bench/api.py, in Go so the client costs little CPU beside
// the Python server on a 2-core machine.
//
// Open loop (-rate R): requests are scheduled every 1/R s whatever the server does, and latency is
// measured from the scheduled time, so a stalled server shows as latency instead of hiding it
// (no coordinated omission). Closed loop (-rate 0): -concurrency workers send back to back, which
// measures the most requests per second the server sustains.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	Mode        string  `json:"mode"`
	TargetRate  float64 `json:"target_rate"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Rate        float64 `json:"achieved_rate"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	Maxms       float64 `json:"max_ms"`
}

func main() {
	urlsFile := flag.String("urls", "", "file with one URL per line, used round robin")
	rate := flag.Float64("rate", 0, "requests per second (open loop); 0 = closed loop")
	concurrency := flag.Int("concurrency", 64, "connections (open loop: the most in flight)")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "sent first and not counted")
	header := flag.String("header", "", "a header sent with every request, as 'Name: value' (a bearer token)")
	flag.Parse()
	headerName, headerValue, _ := strings.Cut(*header, ":")
	headerValue = strings.TrimSpace(headerValue)

	urls := readLines(*urlsFile)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency},
	}
	get := func(u string) bool {
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			return false
		}
		if headerName != "" {
			req.Header.Set(headerName, headerValue)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	run(get, urls, *rate, *concurrency, *warmup) // warm connections and caches
	latencies, errors, elapsed := run(get, urls, *rate, *concurrency, *duration)
	sort.Float64s(latencies)
	mode := "closed"
	if *rate > 0 {
		mode = "open"
	}
	out := result{
		Mode: mode, TargetRate: *rate, Concurrency: *concurrency, Seconds: elapsed.Seconds(),
		Requests: len(latencies) + errors, Errors: errors,
		Rate:  float64(len(latencies)) / elapsed.Seconds(),
		P50ms: pct(latencies, 0.50), P90ms: pct(latencies, 0.90), P99ms: pct(latencies, 0.99),
		Maxms: pct(latencies, 1.0),
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func run(get func(string) bool, urls []string, rate float64, concurrency int, d time.Duration) ([]float64, int, time.Duration) {
	var mu sync.Mutex
	var latencies []float64
	errors := 0
	record := func(start time.Time, ok bool) {
		ms := float64(time.Since(start).Microseconds()) / 1000
		mu.Lock()
		defer mu.Unlock()
		if ok {
			latencies = append(latencies, ms)
		} else {
			errors++
		}
	}
	begin := time.Now()
	var wg sync.WaitGroup
	if rate > 0 {
		slots := make(chan struct{}, concurrency)
		interval := time.Duration(float64(time.Second) / rate)
		for i := 0; ; i++ {
			scheduled := begin.Add(time.Duration(i) * interval)
			if scheduled.Sub(begin) >= d {
				break
			}
			time.Sleep(time.Until(scheduled))
			slots <- struct{}{}
			wg.Add(1)
			go func(u string, scheduled time.Time) {
				defer wg.Done()
				ok := get(u)
				<-slots
				record(scheduled, ok)
			}(urls[i%len(urls)], scheduled)
		}
	} else {
		deadline := begin.Add(d)
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; time.Now().Before(deadline); i += concurrency {
					start := time.Now()
					record(start, get(urls[i%len(urls)]))
				}
			}(w)
		}
	}
	wg.Wait()
	return latencies, errors, time.Since(begin)
}

func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if s.Text() != "" {
			lines = append(lines, s.Text())
		}
	}
	return lines
}
