// Package plugin registers a bench module's HTTP stream type with the SDK: one VM, one plugin, one context per stream.
package plugin

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// Serve makes newStream's contexts handle every HTTP stream of the module.
func Serve(newStream func() types.HttpContext) { proxywasm.SetVMContext(&vm{newStream: newStream}) }

type vm struct {
	types.DefaultVMContext
	newStream func() types.HttpContext
}

func (v *vm) NewPluginContext(uint32) types.PluginContext { return &root{newStream: v.newStream} }

type root struct {
	types.DefaultPluginContext
	newStream func() types.HttpContext
}

func (r *root) NewHttpContext(uint32) types.HttpContext { return r.newStream() }
