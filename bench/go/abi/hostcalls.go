// Replaces the SDK's TinyGo-only proxywasm/internal/abi_hostcalls.go at build time (go build -overlay, see
// tests/bench/go.ts): the same Go functions, over standard Go's //go:wasmimport, which takes only 32/64-bit scalars
// and pointers to pointer-free data (Go's int is 64-bit on GOARCH=wasm; the ABI's sizes and out-pointers are 32-bit).

package internal

import "unsafe"

// p passes a Go pointer as the i32 address the host expects.
func p(b *byte) uint32 { return uint32(uintptr(unsafe.Pointer(b))) }

// out turns an address the host wrote back into a Go pointer (memory the module's malloc returned).
func out(addr uint32) *byte { return (*byte)(unsafe.Pointer(uintptr(addr))) }

//go:wasmimport env proxy_log
func rawLog(level, msg, size uint32) uint32

func ProxyLog(logLevel LogLevel, messageData *byte, messageSize int) Status {
	return Status(rawLog(uint32(logLevel), p(messageData), uint32(messageSize)))
}

//go:wasmimport env proxy_send_local_response
func rawSendLocalResponse(status, details, detailsSize, body, bodySize, headers, headersSize, grpc uint32) uint32

func ProxySendLocalResponse(statusCode uint32, statusCodeDetailData *byte, statusCodeDetailsSize int,
	bodyData *byte, bodySize int, headersData *byte, headersSize int, grpcStatus int32) Status {
	return Status(rawSendLocalResponse(statusCode, p(statusCodeDetailData), uint32(statusCodeDetailsSize),
		p(bodyData), uint32(bodySize), p(headersData), uint32(headersSize), uint32(grpcStatus)))
}

//go:wasmimport env proxy_get_shared_data
func rawGetSharedData(key, keySize uint32, value, valueSize, cas *uint32) uint32

func ProxyGetSharedData(keyData *byte, keySize int, returnValueData **byte, returnValueSize *int, returnCas *uint32) Status {
	var v, n uint32
	s := Status(rawGetSharedData(p(keyData), uint32(keySize), &v, &n, returnCas))
	*returnValueData, *returnValueSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_set_shared_data
func rawSetSharedData(key, keySize, value, valueSize, cas uint32) uint32

func ProxySetSharedData(keyData *byte, keySize int, valueData *byte, valueSize int, cas uint32) Status {
	return Status(rawSetSharedData(p(keyData), uint32(keySize), p(valueData), uint32(valueSize), cas))
}

//go:wasmimport env proxy_register_shared_queue
func rawRegisterSharedQueue(name, nameSize uint32, id *uint32) uint32

func ProxyRegisterSharedQueue(nameData *byte, nameSize int, returnID *uint32) Status {
	return Status(rawRegisterSharedQueue(p(nameData), uint32(nameSize), returnID))
}

//go:wasmimport env proxy_resolve_shared_queue
func rawResolveSharedQueue(vm, vmSize, name, nameSize uint32, id *uint32) uint32

func ProxyResolveSharedQueue(vmIDData *byte, vmIDSize int, nameData *byte, nameSize int, returnID *uint32) Status {
	return Status(rawResolveSharedQueue(p(vmIDData), uint32(vmIDSize), p(nameData), uint32(nameSize), returnID))
}

//go:wasmimport env proxy_dequeue_shared_queue
func rawDequeueSharedQueue(id uint32, value, valueSize *uint32) uint32

func ProxyDequeueSharedQueue(queueID uint32, returnValueData **byte, returnValueSize *int) Status {
	var v, n uint32
	s := Status(rawDequeueSharedQueue(queueID, &v, &n))
	*returnValueData, *returnValueSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_enqueue_shared_queue
func rawEnqueueSharedQueue(id, value, valueSize uint32) uint32

func ProxyEnqueueSharedQueue(queueID uint32, valueData *byte, valueSize int) Status {
	return Status(rawEnqueueSharedQueue(queueID, p(valueData), uint32(valueSize)))
}

//go:wasmimport env proxy_get_header_map_value
func rawGetHeaderMapValue(mapType, key, keySize uint32, value, valueSize *uint32) uint32

func ProxyGetHeaderMapValue(mapType MapType, keyData *byte, keySize int, returnValueData **byte, returnValueSize *int) Status {
	var v, n uint32
	s := Status(rawGetHeaderMapValue(uint32(mapType), p(keyData), uint32(keySize), &v, &n))
	*returnValueData, *returnValueSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_add_header_map_value
func rawAddHeaderMapValue(mapType, key, keySize, value, valueSize uint32) uint32

func ProxyAddHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(rawAddHeaderMapValue(uint32(mapType), p(keyData), uint32(keySize), p(valueData), uint32(valueSize)))
}

//go:wasmimport env proxy_replace_header_map_value
func rawReplaceHeaderMapValue(mapType, key, keySize, value, valueSize uint32) uint32

func ProxyReplaceHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(rawReplaceHeaderMapValue(uint32(mapType), p(keyData), uint32(keySize), p(valueData), uint32(valueSize)))
}

//go:wasmimport env proxy_remove_header_map_value
func rawRemoveHeaderMapValue(mapType, key, keySize uint32) uint32

func ProxyRemoveHeaderMapValue(mapType MapType, keyData *byte, keySize int) Status {
	return Status(rawRemoveHeaderMapValue(uint32(mapType), p(keyData), uint32(keySize)))
}

//go:wasmimport env proxy_get_header_map_pairs
func rawGetHeaderMapPairs(mapType uint32, value, valueSize *uint32) uint32

func ProxyGetHeaderMapPairs(mapType MapType, returnValueData **byte, returnValueSize *int) Status {
	var v, n uint32
	s := Status(rawGetHeaderMapPairs(uint32(mapType), &v, &n))
	*returnValueData, *returnValueSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_set_header_map_pairs
func rawSetHeaderMapPairs(mapType, data, size uint32) uint32

func ProxySetHeaderMapPairs(mapType MapType, mapData *byte, mapSize int) Status {
	return Status(rawSetHeaderMapPairs(uint32(mapType), p(mapData), uint32(mapSize)))
}

//go:wasmimport env proxy_get_buffer_bytes
func rawGetBufferBytes(bufferType, start, maxSize uint32, value, valueSize *uint32) uint32

func ProxyGetBufferBytes(bufferType BufferType, start int, maxSize int, returnBufferData **byte, returnBufferSize *int) Status {
	var v, n uint32
	s := Status(rawGetBufferBytes(uint32(bufferType), uint32(start), uint32(maxSize), &v, &n))
	*returnBufferData, *returnBufferSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_set_buffer_bytes
func rawSetBufferBytes(bufferType, start, maxSize, data, size uint32) uint32

func ProxySetBufferBytes(bufferType BufferType, start int, maxSize int, bufferData *byte, bufferSize int) Status {
	return Status(rawSetBufferBytes(uint32(bufferType), uint32(start), uint32(maxSize), p(bufferData), uint32(bufferSize)))
}

//go:wasmimport env proxy_continue_stream
func rawContinueStream(streamType uint32) uint32

func ProxyContinueStream(streamType StreamType) Status {
	return Status(rawContinueStream(uint32(streamType)))
}

//go:wasmimport env proxy_close_stream
func rawCloseStream(streamType uint32) uint32

func ProxyCloseStream(streamType StreamType) Status {
	return Status(rawCloseStream(uint32(streamType)))
}

//go:wasmimport env proxy_http_call
func rawHttpCall(upstream, upstreamSize, headers, headersSize, body, bodySize, trailers, trailersSize, timeout uint32, id *uint32) uint32

func ProxyHttpCall(upstreamData *byte, upstreamSize int, headerData *byte, headerSize int,
	bodyData *byte, bodySize int, trailersData *byte, trailersSize int, timeout uint32, calloutIDPtr *uint32,
) Status {
	return Status(rawHttpCall(p(upstreamData), uint32(upstreamSize), p(headerData), uint32(headerSize),
		p(bodyData), uint32(bodySize), p(trailersData), uint32(trailersSize), timeout, calloutIDPtr))
}

//go:wasmimport env proxy_call_foreign_function
func rawCallForeignFunction(name, nameSize, param, paramSize uint32, value, valueSize *uint32) uint32

func ProxyCallForeignFunction(funcNamePtr *byte, funcNameSize int, paramPtr *byte, paramSize int, returnData **byte, returnSize *int) Status {
	var v, n uint32
	s := Status(rawCallForeignFunction(p(funcNamePtr), uint32(funcNameSize), p(paramPtr), uint32(paramSize), &v, &n))
	*returnData, *returnSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_set_tick_period_milliseconds
func rawSetTickPeriod(period uint32) uint32

func ProxySetTickPeriodMilliseconds(period uint32) Status { return Status(rawSetTickPeriod(period)) }

//go:wasmimport env proxy_set_effective_context
func rawSetEffectiveContext(id uint32) uint32

func ProxySetEffectiveContext(contextID uint32) Status {
	return Status(rawSetEffectiveContext(contextID))
}

//go:wasmimport env proxy_done
func rawDone() uint32

func ProxyDone() Status { return Status(rawDone()) }

//go:wasmimport env proxy_define_metric
func rawDefineMetric(metricType, name, nameSize uint32, id *uint32) uint32

func ProxyDefineMetric(metricType MetricType, metricNameData *byte, metricNameSize int, returnMetricIDPtr *uint32) Status {
	return Status(rawDefineMetric(uint32(metricType), p(metricNameData), uint32(metricNameSize), returnMetricIDPtr))
}

//go:wasmimport env proxy_increment_metric
func rawIncrementMetric(id uint32, offset int64) uint32

func ProxyIncrementMetric(metricID uint32, offset int64) Status {
	return Status(rawIncrementMetric(metricID, offset))
}

//go:wasmimport env proxy_record_metric
func rawRecordMetric(id uint32, value uint64) uint32

func ProxyRecordMetric(metricID uint32, value uint64) Status {
	return Status(rawRecordMetric(metricID, value))
}

//go:wasmimport env proxy_get_metric
func rawGetMetric(id uint32, value *uint64) uint32

func ProxyGetMetric(metricID uint32, returnMetricValue *uint64) Status {
	return Status(rawGetMetric(metricID, returnMetricValue))
}

//go:wasmimport env proxy_get_property
func rawGetProperty(path, pathSize uint32, value, valueSize *uint32) uint32

func ProxyGetProperty(pathData *byte, pathSize int, returnValueData **byte, returnValueSize *int) Status {
	var v, n uint32
	s := Status(rawGetProperty(p(pathData), uint32(pathSize), &v, &n))
	*returnValueData, *returnValueSize = out(v), int(n)
	return s
}

//go:wasmimport env proxy_set_property
func rawSetProperty(path, pathSize, value, valueSize uint32) uint32

func ProxySetProperty(pathData *byte, pathSize int, valueData *byte, valueSize int) Status {
	return Status(rawSetProperty(p(pathData), uint32(pathSize), p(valueData), uint32(valueSize)))
}
