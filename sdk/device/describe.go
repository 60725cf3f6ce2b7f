package device

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/wick-cloud/wick/protocol"
)

// appDescribe returns the application describe: {"f":[...],"v":{...}}
// with the numeric variable type codes (docs/particle-protocol.md#describe ✔).
func (d *Device) appDescribe() protocol.AppDescribe {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := protocol.AppDescribe{
		Functions: make([]string, 0, len(d.functions)),
		Variables: make([]protocol.VariableDecl, 0, len(d.variables)),
	}
	for _, f := range d.functions {
		a.Functions = append(a.Functions, f.name)
	}
	for _, v := range d.variables {
		a.Variables = append(a.Variables, protocol.VariableDecl{Name: v.name, Type: v.typ})
	}
	return a
}

// Module sizes reported in the system describe: the Photon's flash layout.
const (
	bootloaderMaxSize = 16384
	systemMaxSize     = 262144
	userMaxSize       = 131072
	moduleValid       = 0x1E // verification flags checked/passed: all of them
)

// systemDescribe returns the Device OS ≤ 3.x JSON system describe: the
// platform and three modules (bootloader, system part, user part). The user
// module's hash is derived from the application describe, so it changes
// when the application's functions or variables do, as a real app hash
// would.
func (d *Device) systemDescribe(app []byte) protocol.SystemDescribe {
	sum := sha256.Sum256(app)
	sys := protocol.ModuleDependency{Function: "s", Index: "1", Version: int(d.cfg.SystemVersion)}
	return protocol.SystemDescribe{
		Platform: int(d.cfg.PlatformID),
		Modules: []protocol.FirmwareModule{
			{MaxSize: bootloaderMaxSize, Store: "m", Checked: moduleValid, Passed: moduleValid,
				Function: "b", Index: "0", Version: 1100, Dependencies: []protocol.ModuleDependency{}},
			{MaxSize: systemMaxSize, Store: "m", Checked: moduleValid, Passed: moduleValid,
				Function: "s", Index: "1", Version: int(d.cfg.SystemVersion), Dependencies: []protocol.ModuleDependency{}},
			{MaxSize: userMaxSize, Store: "m", Checked: moduleValid, Passed: moduleValid,
				Hash: hex.EncodeToString(sum[:]), Function: "u", Index: "1", Version: 6,
				Dependencies: []protocol.ModuleDependency{sys}},
		},
	}
}

// describePayload returns the JSON answering flags. System and application
// parts requested together are merged into one valid object (Device OS 3.3.1
// omits the comma between them; we do not imitate that bug). Metrics (0x04)
// are not supported and contribute nothing.
func (d *Device) describePayload(flags protocol.DescribeFlags) ([]byte, error) {
	app, err := d.appDescribe().MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("device: describe: %w", err)
	}
	wantSys, wantApp := flags&protocol.DescribeSystem != 0, flags&protocol.DescribeApplication != 0
	switch {
	case wantSys:
		sys, err := json.Marshal(d.systemDescribe(app))
		if err != nil {
			return nil, fmt.Errorf("device: describe: %w", err)
		}
		if !wantApp {
			return sys, nil
		}
		// {"p":..,"m":[..]} + {"f":[..],"v":{..}} → {"p":..,"m":[..],"f":[..],"v":{..}}
		var b bytes.Buffer
		b.Write(sys[:len(sys)-1])
		b.WriteByte(',')
		b.Write(app[1:])
		return b.Bytes(), nil
	case wantApp:
		return app, nil
	}
	return nil, fmt.Errorf("device: describe flags %s not supported", flags)
}
