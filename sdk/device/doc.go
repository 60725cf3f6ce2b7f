// Package device is a Go client for the Particle device protocol: it
// connects to a Wick (or Particle-compatible) device gateway over the Gen 2
// TCP transport, or over the Gen 3 DTLS/UDP transport (Config.Transport), and
// behaves like Device OS firmware, so that a Go program can stand in for a
// Photon or an Argon and a test can use it as a conformance client.
//
// Its API is shaped like the firmware's:
//
//	d, _ := device.New(device.Config{ID: id, PrivateKey: key, ServerAddr: "cloud:5683", ServerKey: serverKey})
//	d.Function("led", func(ctx context.Context, arg string) int32 { ... })  // Particle.function
//	d.Variable("temp", func() float64 { return 21.5 })                      // Particle.variable
//	d.Subscribe("alarm", func(name, data string) { ... })                   // Particle.subscribe
//	go d.Run(ctx)                                                            // the system thread
//	d.Publish(ctx, "sensor", "1234", device.PublishOptions{})               // Particle.publish
//
// # Protocol behaviour
//
// Run dials the server, performs the RSA handshake (protocol.DeviceHandshake),
// sends the CoAP Hello and waits up to 4 s for the server's Hello, as TCP
// firmware does. After that it posts the system describe (when
// Config.DeviceDescribe is set, Hello flag 0x20), subscribes to the system
// prefixes "spark" and "particle" and to the application's prefixes,
// publishes the claim code (Config.ClaimCode) and the firmware-update flags,
// asks for the time and posts the application describe. Describe requests
// from the server are answered for system and application info separately or
// merged; function calls, variable reads, signals, pings and events to the
// device are answered as Device OS 3.x answers them
// (docs/particle-protocol.md#the-coap-message-layer). Every ✔ detail there
// is followed: 1-byte tokens, message IDs starting at
// LE16(salt)+1, separate NON responses over TCP, the piggy-backed time reply.
//
// By default the device is well behaved: replies keep the request's
// message ID, and an empty ACK and the response after it go in one write.
// Config.Quirks reproduces what the firmware does instead (its own message
// IDs on some replies, two writes, Nagle's algorithm, 4.00 for a describe
// request without flags), so that servers can be tested against
// it (docs/device-protocol.md, Firmware quirks).
//
// After 15 s without receiving anything the device sends a CoAP ping and
// gives the connection 10 s more; a lost connection is re-established with
// exponential backoff and jitter until Run's context is cancelled. On
// cancellation the device sends a Goodbye (Hello flag 0x10) and closes the
// connection.
//
// # The Gen 3 transport
//
// With Config.Transport = protocol.TransportUDP the device uses a P-256 key
// (Config.ECPrivateKey) and pins the server's P-256 key (Config.ECServerKey).
// It runs protocol/dtls's handshake over a connected UDP socket and sends one
// CoAP message per record: the Hello is confirmable and names the device,
// message IDs start at 1, events and separate responses are confirmable, and
// the device is online once the Hello is acknowledged (no server Hello is
// needed). Confirmable messages are retransmitted with protocol.Outbox
// (4 s × 1.0-1.5, doubling, 3 retransmissions; then the connection is
// given up), repeated ones from the server are answered from a
// protocol.Dedup cache. With UDPOptions.Resume the session survives the
// connection: the next one resumes it without a handshake, as Particle's
// firmware does (records marked as type 253 until the server answers, then
// a ping), and falls back to a full handshake when the server does not
// answer. Device.SessionState and UDPOptions.Session move a session to
// another process; UDPOptions.OnSession keeps it in storage of the
// device's own, with states that reserve sequence numbers ahead so that a
// restart, even after a crash, never seals a DTLS record sequence number (a
// CCM nonce) twice. Device.ChangeAddress moves the connection to a new local
// port, and UDPOptions.Faults lose, repeat and reorder datagrams.
//
// # Concurrency and memory
//
// A Device is safe for concurrent use. A connected Device uses one goroutine
// (Run's, which reads the connection); writes happen on the caller's
// goroutine under a lock. Function and subscription handlers run one at a
// time, in arrival order, on a goroutine that exists only while there is
// work, like the firmware's application thread; variable getters run on the
// reading goroutine and must return quickly. An idle connected Device holds
// a few kilobytes, so one process can simulate tens of thousands of them
// (see Config.PrivateKeyDER).
//
// Only the standard library and the protocol packages (protocol,
// protocol/dtls) are imported; the devicetest subpackage is a minimal
// in-process server for tests.
package device
