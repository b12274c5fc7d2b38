// Added to the SDK's proxywasm/internal package at build time (go build -overlay): the ABI's exports as standard Go
// //go:wasmexport functions over the SDK's own callbacks, which it marks only with TinyGo's //export.

package internal

import "unsafe"

// keep holds the last buffers handed to the host, so no collection can free one before the SDK has read it.
var keep [8][]byte
var keepAt uint32

//go:wasmexport proxy_on_memory_allocate
func exportMalloc(size uint32) uint32 {
	buf := make([]byte, size+1) // +1: a zero-size request still gets its own address
	keep[keepAt&7] = buf
	keepAt++
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport proxy_abi_version_0_2_1
func exportABIVersion() {}

func b(x uint32) bool { return x != 0 }

func u(x bool) uint32 {
	if x {
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_vm_start
func exportOnVMStart(id, size uint32) uint32 { return u(bool(proxyOnVMStart(id, int(size)))) }

//go:wasmexport proxy_on_configure
func exportOnConfigure(id, size uint32) uint32 { return u(bool(proxyOnConfigure(id, int(size)))) }

//go:wasmexport proxy_on_context_create
func exportOnContextCreate(id, parent uint32) { proxyOnContextCreate(id, parent) }

//go:wasmexport proxy_on_request_headers
func exportOnRequestHeaders(id, n, end uint32) uint32 {
	return uint32(proxyOnRequestHeaders(id, int(n), b(end)))
}

//go:wasmexport proxy_on_request_body
func exportOnRequestBody(id, n, end uint32) uint32 {
	return uint32(proxyOnRequestBody(id, int(n), b(end)))
}

//go:wasmexport proxy_on_request_trailers
func exportOnRequestTrailers(id, n uint32) uint32 { return uint32(proxyOnRequestTrailers(id, int(n))) }

//go:wasmexport proxy_on_response_headers
func exportOnResponseHeaders(id, n, end uint32) uint32 {
	return uint32(proxyOnResponseHeaders(id, int(n), b(end)))
}

//go:wasmexport proxy_on_response_body
func exportOnResponseBody(id, n, end uint32) uint32 {
	return uint32(proxyOnResponseBody(id, int(n), b(end)))
}

//go:wasmexport proxy_on_response_trailers
func exportOnResponseTrailers(id, n uint32) uint32 {
	return uint32(proxyOnResponseTrailers(id, int(n)))
}

//go:wasmexport proxy_on_http_call_response
func exportOnHttpCallResponse(id, callout, headers, body, trailers uint32) {
	proxyOnHttpCallResponse(id, callout, int(headers), int(body), int(trailers))
}

//go:wasmexport proxy_on_log
func exportOnLog(id uint32) { proxyOnLog(id) }

//go:wasmexport proxy_on_done
func exportOnDone(id uint32) uint32 {
	return u(proxyOnDone(id))
}

//go:wasmexport proxy_on_delete
func exportOnDelete(id uint32) { proxyOnDelete(id) }

//go:wasmexport proxy_on_queue_ready
func exportOnQueueReady(id, queue uint32) { proxyOnQueueReady(id, queue) }

//go:wasmexport proxy_on_tick
func exportOnTick(id uint32) { proxyOnTick(id) }
