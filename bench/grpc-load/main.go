// grpc-load: scenario (a)'s load client in Go (grpc-go). A grpc-js client
// spends about twice a Node server's CPU per call, so on a 2-core machine
// it, not the server, sets the pace and both servers read alike
// (bench/README.md, finding 15). grpc-go spends a fraction of that, so the
// server under test is what runs out of CPU.
//
// One connection, CONCURRENCY callers, unary GetEvent with a 10 s deadline
// (grpc-go callers set one; it arrives as grpc-timeout); warm-up calls, then
// measured calls. Each answer must be status OK and carry the event id.
// Prints one JSON line: calls, errors, seconds, callsPerSec, p50/p90/p99 in
// ms, and this process's CPU seconds (user + system) over the measured calls.
// With -pause it prints {"warmedUp":true} after the warm-up and waits for a
// line on stdin, so the caller can read the server's CPU counters in between.
//
//	grpc-load -target 127.0.0.1:PORT -event ID [-warmup 5000] [-calls 20000] [-concurrency 64] [-pause]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// rawCodec passes bytes through: the request is encoded by hand and the
// answer checked for the event id, so no generated Go code is needed.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" } // the codec gRPC calls "proto": the same content type as any protobuf client

const method = "/myevents.v1.EventService/GetEvent"

type result struct {
	Calls       int     `json:"calls"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	Seconds     float64 `json:"seconds"`
	CallsPerSec float64 `json:"callsPerSec"`
	P50Ms       float64 `json:"p50Ms"`
	P90Ms       float64 `json:"p90Ms"`
	P99Ms       float64 `json:"p99Ms"`
	CPUSeconds  float64 `json:"cpuSeconds"`
}

func main() {
	target := flag.String("target", "", "host:port of the server")
	eventID := flag.String("event", "", "id of the event to get")
	warmup := flag.Int("warmup", 5000, "calls before measuring")
	calls := flag.Int("calls", 20000, "measured calls")
	concurrency := flag.Int("concurrency", 64, "calls in flight")
	pause := flag.Bool("pause", false, "after the warm-up, print {\"warmedUp\":true} and wait for a line on stdin")
	flag.Parse()
	if *target == "" || *eventID == "" || len(*eventID) > 127 || *calls < 1 || *warmup < 0 || *concurrency < 1 {
		fmt.Fprintln(os.Stderr, "usage: grpc-load -target host:port -event ID [-warmup N] [-calls N] [-concurrency N]")
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})
	conn, err := grpc.NewClient(*target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-load:", err)
		os.Exit(1)
	}
	defer conn.Close()

	// GetEventRequest{id}: field 1, length-delimited (ids are short: one length byte).
	request := append([]byte{0x0a, byte(len(*eventID))}, *eventID...)
	want := []byte(*eventID)

	run := func(n int) (result, []float64) {
		latencies := make([]float64, n)
		var next, errors int64 = -1, 0
		var firstError atomic.Value
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < *concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var reply []byte
				for {
					i := atomic.AddInt64(&next, 1)
					if i >= int64(n) {
						return
					}
					t := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := conn.Invoke(ctx, method, &request, &reply)
					cancel()
					latencies[i] = float64(time.Since(t).Nanoseconds()) / 1e6
					if err == nil && !bytes.Contains(reply, want) {
						err = fmt.Errorf("answer without the event id (%d bytes)", len(reply))
					}
					if err != nil {
						atomic.AddInt64(&errors, 1)
						firstError.CompareAndSwap(nil, err.Error())
					}
				}
			}()
		}
		wg.Wait()
		seconds := time.Since(start).Seconds()
		r := result{Calls: n, Errors: errors, Seconds: seconds, CallsPerSec: float64(n) / seconds}
		if e, ok := firstError.Load().(string); ok {
			r.FirstError = e
		}
		return r, latencies
	}

	if w, _ := run(*warmup); w.Errors > 0 {
		fmt.Fprintf(os.Stderr, "grpc-load: %d of %d warm-up calls failed: %s\n", w.Errors, w.Calls, w.FirstError)
		os.Exit(1)
	}
	if *pause {
		fmt.Println(`{"warmedUp":true}`)
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			os.Exit(1)
		}
	}
	before := cpuSeconds()
	r, latencies := run(*calls)
	r.CPUSeconds = cpuSeconds() - before
	sort.Float64s(latencies)
	q := func(p float64) float64 { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	r.P50Ms, r.P90Ms, r.P99Ms = q(0.5), q(0.9), q(0.99)
	json.NewEncoder(os.Stdout).Encode(r)
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}
