//go:build !linux

package gateway

import "net"

// quickACK is a no-op where TCP_QUICKACK does not exist (docs/
// device-protocol.md, "Quick acknowledgements"): other systems either
// delay acknowledgements less in interactive traffic or offer no per-socket
// switch, and the answer then waits for their delayed-ACK timer.
type quickACK struct{}

func newQuickACK(net.Conn) quickACK { return quickACK{} }

// arm does nothing.
func (quickACK) arm() {}

// enabled reports false: arm reaches nothing here.
func (quickACK) enabled() bool { return false }
