// Package gateway is Wick's device gateway: it accepts Particle devices on
// the Gen 2 TCP transport (port 5683, docs/particle-protocol.md#the-tcp-transport)
// and runs one session per device on top of package protocol, the pure wire
// layer. docs/device-protocol.md lists what is implemented and every choice
// Wick made where the protocol leaves room.
//
// # Session
//
// The session follows docs/particle-protocol.md#a-minimal-server-session:
//
//	accept ─► handshake ─► Hello ─► online ─► read loop ─► offline
//	          nonce, RSA    server   store,    ping, time,    store,
//	          (slots),      Hello    bus,      events, subs,  spark/status
//	          key lookup    < 4 s    calls     describes,     offline
//	                                           responses
//
// A session starts with the RSA handshake. The device's key is looked up by
// ID in the store and must equal the key the device offers; unknown devices
// are refused unless Config.TrustOnFirstUse. The device's Hello is answered
// at once with the server Hello, then the device is recorded online
// (store.SetDeviceOnline), registered for bus device calls
// (bus.HandleDevice) and announced with spark/status online. A newer
// connection of the same device replaces the older session, which then
// leaves the device's state alone.
//
// The read loop answers pings and time requests, publishes the device's
// events to the bus (rate-limited per device), records its subscriptions,
// stores its describes and completes the server's pending requests.
// Function calls, variable reads, signals and pings (CallFunction,
// GetVariable, Signal, Ping, or bus.Call from any process) are CON requests
// with a fresh 1-byte token, matched by message ID and token.
//
// # Event delivery
//
// One bus subscription per gateway feeds every device subscription: its
// goroutine looks up the sessions that may see an event in an index by
// owner and product (router.go) and queues the event on each match. A
// session writes its queue from a goroutine that exists only while the
// queue is not empty. A slow device loses its own events (bounded queue,
// write deadline); it never delays the router or another device.
//
// # Robustness
//
// Every phase has a deadline (handshake, Hello, idle, each write). Frames are
// bounded by Config.MaxFrame, and a framing error closes that session only.
// RSA work runs in at most Config.MaxHandshakes slots. Panics are recovered
// per session, per helper goroutine and per routed event.
//
// # Memory
//
// An idle session costs its read goroutine (a 4 KB stack blocked on a
// socket read), the session struct, two AES-CBC states, the connection and
// a few map entries: about 10 KB at 10,000 devices (docs/device-protocol.md
// has the measurements). Frame and write buffers come from pools and are
// held only while a frame is processed; no other goroutine, timer or bus
// subscription is kept per idle session.
package gateway
