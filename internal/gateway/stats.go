package gateway

import "sync/atomic"

// Stats are the gateway's counters since New. Online and Connections are
// gauges; everything else counts up.
type Stats struct {
	// Online is the number of devices with an established session.
	Online int64
	// Connections is the number of open connections, handshaking or online.
	Connections int64
	// HandshakesOK and HandshakesFailed count completed and failed
	// handshakes (refusals included in HandshakesFailed).
	HandshakesOK     uint64
	HandshakesFailed uint64
	// RefusedUnknown counts handshakes refused because the device ID is
	// unknown or has no key on file; RefusedKey because the offered key
	// differs from the stored one or the stored key is unusable;
	// RefusedDenied because the device is marked denied.
	RefusedUnknown uint64
	RefusedKey     uint64
	RefusedDenied  uint64
	// FramesBad counts sessions closed for a framing error (bad length,
	// bad padding, truncated or oversized frame, or a first message that is
	// not a Hello); MessagesBad counts frames that decrypted but held no
	// valid CoAP message (ignored, docs/particle-protocol.md#coap-encoding).
	FramesBad   uint64
	MessagesBad uint64
	// Replaced counts sessions closed by a newer connection of the same device.
	Replaced uint64
	// IdleTimeouts counts sessions closed for silence.
	IdleTimeouts uint64
	// EventsIn counts events published by devices and accepted;
	// EventsLimited those dropped by the rate limit.
	EventsIn      uint64
	EventsLimited uint64
	// EventsOut counts events written to devices; EventsDropped those lost
	// to a full device queue, a full router buffer or a failed write.
	EventsOut     uint64
	EventsDropped uint64
	// Calls counts function calls, variable reads, signals and pings sent
	// to devices; CallsFailed those that ended in an error or timeout.
	Calls       uint64
	CallsFailed uint64
	// CallsBusy counts requests refused, unsent, because the device had
	// the most requests in flight it may have (ErrBusy).
	CallsBusy uint64
	// HandshakesLimited counts connections closed because their address
	// exceeded Config.HandshakeRate, before any RSA operation.
	HandshakesLimited uint64
	// Starting is the number of device sessions (TCP and Gen 3) holding
	// an admission slot (Config.MaxStarting) and StartWaiting the
	// connections waiting for one (gauges). AdmissionQueued counts connections that had to wait,
	// AdmissionRefused those closed because the queue was full, and
	// AdmissionTimeouts those closed after waiting HandshakeIdle.
	Starting          int64
	StartWaiting      int64
	AdmissionQueued   uint64
	AdmissionRefused  uint64
	AdmissionTimeouts uint64
	// EventsUnacked counts confirmable device events the bus did not
	// accept: the device was not acknowledged, and its session was closed
	// so that the firmware sends the event again after reconnecting.
	EventsUnacked uint64
	// ClaimsOK and ClaimsFailed count claim codes reported by devices.
	ClaimsOK     uint64
	ClaimsFailed uint64
	// Panics counts panics recovered in a session or in the router.
	Panics uint64
	// OTAStarted counts firmware updates announced to devices (Flash,
	// spark/flash/status "started "); OTASucceeded and OTAFailed their
	// outcomes. OTAChunks counts firmware chunks sent, resends included.
	OTAStarted   uint64
	OTASucceeded uint64
	OTAFailed    uint64
	OTAChunks    uint64

	// Gen 3 (DTLS over UDP; docs/device-protocol.md#39-the-dtls-transport).
	// UDPSessions is the number of sessions in the connection-ID table
	// (a gauge). UDPDatagramsIn and UDPDatagramsOut count datagrams read
	// and written; UDPDropped those dropped before any session saw them
	// (too short, not a ClientHello nor a known record, a full session
	// queue). UDPCookies counts HelloVerifyRequests sent; UDPSignatures
	// the ServerKeyExchange signatures made (one per handshake past the
	// cookie). UDPUnknownCID counts records on a connection ID no session
	// has (dropped: the device falls back to a full handshake);
	// UDPResumptions sessions resumed from a saved session; UDPSaves
	// sessions saved. UDPRetransmits counts handshake flights and CoAP
	// messages sent again; UDPGaveUp sessions ended because a confirmable
	// message went unacknowledged; UDPDuplicates repeated confirmable
	// messages answered from the cache; UDPBadRecords records that did
	// not open (bad MAC, replay, wrong epoch); UDPMoves sessions re-bound
	// to a new device address.
	UDPSessions     int64
	UDPDatagramsIn  uint64
	UDPDatagramsOut uint64
	UDPDropped      uint64
	UDPCookies      uint64
	UDPSignatures   uint64
	UDPUnknownCID   uint64
	UDPResumptions  uint64
	UDPSaves        uint64
	UDPRetransmits  uint64
	UDPGaveUp       uint64
	UDPDuplicates   uint64
	UDPBadRecords   uint64
	UDPMoves        uint64
	// UDPAdmitted counts Gen 3 session starts (handshakes and resumptions
	// by the device) that got an admission slot (Config.MaxStarting,
	// shared with TCP); UDPAdmissionDropped those dropped instead, the
	// queue being full or the wait too long (the device retransmits).
	UDPAdmitted         uint64
	UDPAdmissionDropped uint64
	// UDPEndAlerts counts fatal alerts sent to devices whose session the
	// gateway ended for a store failure or a refusal, so that they
	// handshake again at once.
	UDPEndAlerts uint64
	// UDPParked is the Gen 3 sessions parked now (no goroutine; a gauge);
	// UDPParks and UDPWakes count parkings and wake-ups.
	UDPParked int64
	UDPParks  uint64
	UDPWakes  uint64
	// TCPParked is the Gen 2 sessions waiting for their device's next
	// frame without a goroutine (tcp_park.go; a gauge); TCPWakes counts
	// their wake-ups.
	TCPParked int64
	TCPWakes  uint64
	// TCPPollerPings counts keep-alive pings of parked Gen 2 sessions
	// answered by the gateway's poller without waking the session;
	// SessionPings those answered by a session's own goroutine (a session
	// running or unable to park, and Gen 3 sessions).
	TCPPollerPings uint64
	SessionPings   uint64
	// UDPParkedPings counts keep-alive pings of parked Gen 3 sessions
	// answered by the gateway's demultiplexer without waking the session
	// (udp_park_ping.go).
	UDPParkedPings uint64
}

// counters is the atomic form of Stats.
type counters struct {
	online, connections                     atomic.Int64
	handshakesOK, handshakesFailed          atomic.Uint64
	refusedUnknown, refusedKey, refusedDeny atomic.Uint64
	framesBad, messagesBad                  atomic.Uint64
	replaced, idleTimeouts                  atomic.Uint64
	eventsIn, eventsLimited                 atomic.Uint64
	eventsOut, eventsDropped                atomic.Uint64
	calls, callsFailed                      atomic.Uint64
	claimsOK, claimsFailed                  atomic.Uint64
	panics                                  atomic.Uint64
	callsBusy, handshakesLimited            atomic.Uint64
	eventsUnacked                           atomic.Uint64
	admissionQueued, admissionRefused       atomic.Uint64
	admissionTimeouts                       atomic.Uint64
	otaStarted, otaSucceeded, otaFailed     atomic.Uint64
	otaChunks                               atomic.Uint64
	udpIn, udpOut, udpDropped, udpCookies   atomic.Uint64
	udpSignatures, udpUnknownCID            atomic.Uint64
	udpResumptions, udpSaves                atomic.Uint64
	udpRetransmits, udpGaveUp               atomic.Uint64
	udpDuplicates, udpBadRecords, udpMoves  atomic.Uint64
	udpAdmitted, udpAdmissionDropped        atomic.Uint64
	udpEndAlerts                            atomic.Uint64
	udpParked                               atomic.Int64
	udpParks, udpWakes                      atomic.Uint64
	tcpParked                               atomic.Int64
	tcpWakes                                atomic.Uint64
	tcpPollerPings, sessionPings            atomic.Uint64
	udpParkedPings                          atomic.Uint64
	// udpHandshakeNanos sums the time handshakes spent in their slot
	// (the server's crypto), for benchmarks.
	udpHandshakeNanos atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Online:              c.online.Load(),
		Connections:         c.connections.Load(),
		HandshakesOK:        c.handshakesOK.Load(),
		HandshakesFailed:    c.handshakesFailed.Load(),
		RefusedUnknown:      c.refusedUnknown.Load(),
		RefusedKey:          c.refusedKey.Load(),
		RefusedDenied:       c.refusedDeny.Load(),
		FramesBad:           c.framesBad.Load(),
		MessagesBad:         c.messagesBad.Load(),
		Replaced:            c.replaced.Load(),
		IdleTimeouts:        c.idleTimeouts.Load(),
		EventsIn:            c.eventsIn.Load(),
		EventsLimited:       c.eventsLimited.Load(),
		EventsOut:           c.eventsOut.Load(),
		EventsDropped:       c.eventsDropped.Load(),
		Calls:               c.calls.Load(),
		CallsFailed:         c.callsFailed.Load(),
		ClaimsOK:            c.claimsOK.Load(),
		ClaimsFailed:        c.claimsFailed.Load(),
		Panics:              c.panics.Load(),
		OTAStarted:          c.otaStarted.Load(),
		OTASucceeded:        c.otaSucceeded.Load(),
		OTAFailed:           c.otaFailed.Load(),
		OTAChunks:           c.otaChunks.Load(),
		CallsBusy:           c.callsBusy.Load(),
		HandshakesLimited:   c.handshakesLimited.Load(),
		AdmissionQueued:     c.admissionQueued.Load(),
		AdmissionRefused:    c.admissionRefused.Load(),
		AdmissionTimeouts:   c.admissionTimeouts.Load(),
		EventsUnacked:       c.eventsUnacked.Load(),
		UDPDatagramsIn:      c.udpIn.Load(),
		UDPDatagramsOut:     c.udpOut.Load(),
		UDPDropped:          c.udpDropped.Load(),
		UDPCookies:          c.udpCookies.Load(),
		UDPSignatures:       c.udpSignatures.Load(),
		UDPUnknownCID:       c.udpUnknownCID.Load(),
		UDPResumptions:      c.udpResumptions.Load(),
		UDPSaves:            c.udpSaves.Load(),
		UDPRetransmits:      c.udpRetransmits.Load(),
		UDPGaveUp:           c.udpGaveUp.Load(),
		UDPDuplicates:       c.udpDuplicates.Load(),
		UDPBadRecords:       c.udpBadRecords.Load(),
		UDPMoves:            c.udpMoves.Load(),
		UDPAdmitted:         c.udpAdmitted.Load(),
		UDPAdmissionDropped: c.udpAdmissionDropped.Load(),
		UDPEndAlerts:        c.udpEndAlerts.Load(),
		UDPParked:           c.udpParked.Load(),
		UDPParks:            c.udpParks.Load(),
		UDPWakes:            c.udpWakes.Load(),
		TCPParked:           c.tcpParked.Load(),
		TCPWakes:            c.tcpWakes.Load(),
		TCPPollerPings:      c.tcpPollerPings.Load(),
		UDPParkedPings:      c.udpParkedPings.Load(),
		SessionPings:        c.sessionPings.Load(),
	}
}
