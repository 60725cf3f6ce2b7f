package sim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"

	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/device"
)

// ErrNoDeviceOnline reports a run that ended after the ramp-up because no
// device came online; its message says why (docs/operations.md, wick sim).
var ErrNoDeviceOnline = errors.New("sim: no device came online")

// FailureKind classifies why a device's connection attempt failed.
type FailureKind string

// The kinds of connection failure, from the network outwards.
const (
	// FailRefused: nothing listens at Config.Server.
	FailRefused FailureKind = "refused"
	// FailUnreachable: the address did not answer (timeout, no route,
	// unknown host).
	FailUnreachable FailureKind = "unreachable"
	// FailNotGateway: a connection opened but no handshake began, so
	// something other than a device gateway listens there.
	FailNotGateway FailureKind = "not-a-gateway"
	// FailClosedAfterHello: the server hung up after reading the device's
	// hello: it has no key on file for the device, the key differs, or the
	// hello was sealed with another server's key.
	FailClosedAfterHello FailureKind = "closed-after-hello"
	// FailServerKey: the server's answer did not verify against the
	// server key the device holds.
	FailServerKey FailureKind = "server-key"
	// FailOther: anything else (the example error tells).
	FailOther FailureKind = "other"
)

// Failure counts the devices that never came online for one reason.
type Failure struct {
	Kind    FailureKind
	Devices int
	Example string // one device's error
}

// classify returns the kind of a device's connection error.
func classify(err error) FailureKind {
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return FailUnreachable
	case errors.Is(err, protocol.ErrHandshakeSignature), errors.Is(err, protocol.ErrHandshakeDecrypt),
		errors.Is(err, protocol.ErrHandshakeShort), errors.Is(err, protocol.ErrHandshakeSize):
		return FailServerKey
	}
	// The handshake's steps are told apart by their messages
	// (protocol.DeviceHandshake): the nonce comes first, the session key
	// answers the hello.
	msg := err.Error()
	hungUp := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
	switch {
	case strings.Contains(msg, "read nonce"):
		return FailNotGateway
	case strings.Contains(msg, "read session key") && hungUp, strings.Contains(msg, "write device hello") && hungUp:
		return FailClosedAfterHello
	case errors.Is(err, device.ErrHelloTimeout):
		return FailNotGateway
	}
	return FailOther
}

// explain turns the failures of a run into sentences that say what is
// wrong and what to do, most frequent first.
func explain(cfg Config, failures []Failure, provisioned bool) string {
	sort.SliceStable(failures, func(i, j int) bool { return failures[i].Devices > failures[j].Devices })
	var parts []string
	for _, f := range failures {
		parts = append(parts, fmt.Sprintf("%d device(s): %s (%s)", f.Devices, hint(cfg, f.Kind, provisioned), f.Example))
	}
	return strings.Join(parts, "; ")
}

// hint is the explanation of one failure kind.
func hint(cfg Config, kind FailureKind, provisioned bool) string {
	switch kind {
	case FailRefused:
		return fmt.Sprintf("nothing listens at %s: is wick serve running, and is --server its --device-tcp address?", cfg.Server)
	case FailUnreachable:
		return fmt.Sprintf("%s cannot be reached: check the host and port of --server", cfg.Server)
	case FailNotGateway:
		return fmt.Sprintf("%s accepted the connection but did not start a device handshake: is --server the device port (--device-tcp, 5683) rather than the HTTP port? "+
			"Or the server's per-address limits closed it (too many devices or handshakes from this address): start the server with --device-handshake-rate=-1 --device-conns-per-ip=0 for large simulations", cfg.Server)
	case FailClosedAfterHello:
		if provisioned {
			return "the server hung up after the device's hello although its key was provisioned through --api: " +
				"--server-key (or --data) is probably not this server's key, or --server and --api are different servers"
		}
		return "the server hung up after the device's hello: it has no key on file for the device " +
			"(provision the keys: add --api URL --token TOKEN, or run wick device provision), " +
			"the key on file differs, or --server-key (or --data) is not this server's key"
	case FailServerKey:
		return "the server's answer does not match --server-key (or the key in --data): use that server's key (wick keys server, or its data directory)"
	}
	return "connection failed"
}

// failures tallies why the devices that never came online failed.
func (s *sim) failures() []Failure {
	byKind := map[FailureKind]*Failure{}
	var order []FailureKind
	for _, d := range s.devices {
		if d.everOnline.Load() {
			continue
		}
		v := d.firstErr.Load()
		if v == nil {
			continue
		}
		err := *v
		kind := classify(err)
		f := byKind[kind]
		if f == nil {
			f = &Failure{Kind: kind, Example: err.Error()}
			byKind[kind] = f
			order = append(order, kind)
		}
		f.Devices++
	}
	out := make([]Failure, 0, len(order))
	for _, k := range order {
		out = append(out, *byKind[k])
	}
	return out
}
