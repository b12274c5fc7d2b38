// service-metrics' core logic on the Go proxy-wasm SDK, for `npm run bench` only: one request counted per destination
// (:authority) and its latency recorded in a histogram, both Envoy metrics defined once per destination per worker.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	"resilience-filters/bench/go/plugin"
)

// series is one destination's counter and histogram.
type series struct {
	requests proxywasm.MetricCounter
	latency  proxywasm.MetricHistogram
}

var byDestination = map[string]series{}

func seriesFor(dest string) series {
	s, ok := byDestination[dest]
	if !ok {
		s = series{
			requests: proxywasm.DefineCounterMetric("go_bench_requests_total;destination=" + dest),
			latency:  proxywasm.DefineHistogramMetric("go_bench_request_duration_us;destination=" + dest),
		}
		byDestination[dest] = s
	}
	return s
}

func init() { plugin.Serve(func() types.HttpContext { return &stream{} }) }

func main() {}

type stream struct {
	types.DefaultHttpContext
	dest string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.dest, _ = proxywasm.GetHttpRequestHeader(":authority")
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() {
	m := seriesFor(s.dest)
	m.requests.Increment(1)
	if d, err := proxywasm.GetProperty([]string{"request", "duration"}); err == nil && len(d) == 8 {
		ns := uint64(d[0]) | uint64(d[1])<<8 | uint64(d[2])<<16 | uint64(d[3])<<24 | uint64(d[4])<<32 | uint64(d[5])<<40 | uint64(d[6])<<48 | uint64(d[7])<<56
		m.latency.Record(ns / 1000)
	}
}
