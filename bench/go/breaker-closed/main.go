// The outlier breaker's closed path on the Go proxy-wasm SDK, for `npm run bench` only: each request reads its
// destination's shared record (answering 503 while it says open); each response counts its outcome in per-worker
// memory, and only a run of consecutive 5xx reaching the threshold writes the record.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	"resilience-filters/bench/go/plugin"
)

const threshold = 5

// outcomes per destination on this worker: consecutive failures, and totals.
type outcomes struct{ consecutive, ok, failed uint64 }

var byDestination = map[string]*outcomes{}

func init() { plugin.Serve(func() types.HttpContext { return &stream{} }) }

func main() {}

type stream struct {
	types.DefaultHttpContext
	dest string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.dest, _ = proxywasm.GetHttpRequestHeader(":authority")
	if rec, _, err := proxywasm.GetSharedData("go-breaker/" + s.dest); err == nil && len(rec) > 0 && rec[0] == 'o' {
		_ = proxywasm.SendHttpResponse(503, [][2]string{{"x-breaker-state", "open"}}, []byte("upstream circuit open\n"), -1)
		return types.ActionPause
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	status, _ := proxywasm.GetHttpResponseHeader(":status")
	o := byDestination[s.dest]
	if o == nil {
		o = &outcomes{}
		byDestination[s.dest] = o
	}
	if len(status) == 3 && status[0] == '5' {
		o.failed++
		o.consecutive++
		if o.consecutive == threshold {
			_ = proxywasm.SetSharedData("go-breaker/"+s.dest, []byte("open"), 0)
		}
	} else {
		o.ok++
		o.consecutive = 0
	}
	return types.ActionContinue
}
