// Package protocol implements the Particle device ↔ cloud wire protocol as
// pure code: bytes in, structs out, over byte slices and io.Reader/io.Writer.
// It opens no sockets, starts no goroutines and imports nothing from Wick;
// the gateway (server side) and sdk/device (device side) own the connections.
//
// The wire format is described in docs/particle-protocol.md; comments cite
// its headings (docs/particle-protocol.md#describe and so on), and the labels
// on the right of the flow below are those headings. Details marked ✔ there
// were observed against real firmware and are followed byte for byte. What
// Wick chose where the protocol leaves room is in docs/device-protocol.md.
//
// # Protocol flow (Gen 2, TCP 5683)
//
//	device                                              server
//	  | <------------------------------- nonce (40 B, clear)  |  TCP handshake, step 1
//	  | RSA-2048(server key)[nonce ‖ id ‖ device SPKI] ---->  |  256 B, step 2
//	  |                                                       |  OpenDeviceHello, key lookup
//	  | <---- RSA-1024(device key)[cred] ‖ sig(HMAC(cred,ct)) |  384 B, step 4
//	  |                                                       |
//	  |   cred = key(16) ‖ iv(16) ‖ salt(8); from here on every message is one
//	  |   AES-128-CBC frame len(2) ‖ ct, IV chained per direction (Frames)
//	  |                                                       |
//	  | POST h  Hello (NON, id LE16(salt)+1) -------------->  |  Hello
//	  | <----------------------------------- POST h  Hello    |  within 4 s or the device drops
//	  | POST d?1 / d?2 describes (flag 0x20) -------------->  |  Describe, ACKed
//	  | GET t -------------------------------------------->  |
//	  | <------------------------ ACK 2.05 <u32 unix time>    |  piggy-backed, Time
//	  | POST E/e events, GET e subscriptions -------------->  |  Events, Subscriptions
//	  | <---------------- GET d?N, POST f/name?arg, GET v/name, PUT s?1, POST E/name
//	  | ACK, then separate 2.05/2.04 with the same token --->  |  Functions, Variables
//	  | CON ping (after 15 s idle) <---------------------->  ACK  Keep-alive
//
// # Layers
//
// Handshake (handshake.go): both sides as pure functions (OpenDeviceHello,
// SealSessionKeys on the server; SealDeviceHello, OpenSessionKeys on the
// device) and as io.ReadWriter drivers (ServerHandshake, DeviceHandshake).
// Keys (keys.go, server_key_blob.go): PEM/DER parsing in PKCS#1, PKIX, PKCS#8
// and SEC1 forms and the server-key blob `particle keys server` flashes.
//
// Framing (frame.go): FrameSealer/FrameOpener hold one direction's IV chain;
// FrameReader/FrameWriter wrap them around a stream. This is the only
// TCP-specific layer; the DTLS transport of
// docs/particle-protocol.md#the-dtls-transport (records in protocol/dtls)
// delivers the same CoAP messages as datagrams, one per record.
//
// Reliability over UDP (reliable.go): Dedup answers repeated confirmable
// messages from a cache of the replies sent, Outbox schedules the
// retransmission of one's own until they are acknowledged or given up
// (docs/particle-protocol.md#confirmable-messages-and-retransmission). Both take the
// time as an argument and start no timers.
//
// CoAP (coap.go): Message with Decode (zero allocations when the Message is
// reused; results alias the input) and AppendBinary. Messages of the
// catalogue (docs/particle-protocol.md#message-catalogue) have New*
// constructors and Parse* parsers; Classify maps a decoded message to its Kind
// for dispatch. Parsed results own their memory (names, data and payloads are
// copied), so they outlive the frame buffer.
//
// # Conventions
//
// Requests to the device always carry exactly one token byte (Tokens hands
// them out); the firmware parses fixed offsets assuming it. Message types that
// differ between transports (Hello, events, separate responses) are passed in
// by the caller, usually Transport.DefaultType(). Nothing here is safe for
// concurrent use unless stated; a session owns its reader, writer and counters.
package protocol
