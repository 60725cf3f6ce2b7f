// Package bus is Wick's event bus over NATS: device and API events with
// per-subscriber filters and Last-Event-ID replay, device presence, and
// request/reply calls to whichever process holds a device's connection.
//
// By default Open starts an embedded NATS server inside the process that
// listens on no port; with Config.URL the bus joins an external NATS server
// or cluster, so that several Wick processes share one bus. The subjects
// and payloads are listed in docs/bus.md.
//
// # Ordering
//
// Every accepted event gets an ID that increases in acceptance order (the
// JetStream stream sequence, or a per-process counter without JetStream).
// A subscriber receives its events in ID order, so the events of one
// publisher reach every subscriber in the order they were published.
// Events of different publishers interleave in acceptance order.
//
// # Backpressure
//
// A slow subscriber never slows a publisher or another subscriber. Publish
// returns once the event is accepted (stored in the JetStream stream, or
// written to NATS); it never waits for delivery. Each Subscription has a
// bounded buffer; when it is full, further events for that subscriber are
// dropped and counted (Subscription.Dropped and Stats.Dropped). Causing a
// publisher to block is considered a bug in the bus, and a dropped event is
// the slow subscriber's loss alone. A subscriber that needs every event
// reads promptly, or reconnects with After(lastID) to replay what it lost
// from the bounded replay window.
//
// # Replay
//
// Subscribe with After(lastID, max) first delivers the buffered events
// newer than lastID inside the replay window (Config.ReplayWindow and
// Config.ReplayMaxEvents), then continues live with no gap and no
// duplicate. With JetStream the window is a stream and works across
// processes; without it the window is a ring of the events this process
// published.
//
// # Device calls
//
// A gateway registers a Handler per connected device with HandleDevice; Call
// reaches it from any process. One wildcard NATS subscription per process
// routes calls to an in-process map, so a process can hold any number of
// devices. Calls for a device held by the calling process skip NATS.
package bus
