package gateway

// A stale server flight on a reused port (docs/device-protocol.md#39-the-dtls-transport,
// "A reused port"): a device that gives up on a handshake leaves the
// server resending its flight to the device's address and port, and a
// device that starts a handshake from the same port (a NAT or a simulator
// hands the port out again, a device restarts) can read that flight: its
// ServerKeyExchange is signed over the old handshake's client random, does
// not verify, and the new device's handshake fails. The server cannot
// tell a new device from a spoofed datagram by a cookie-less ClientHello,
// so it does not end the old handshake on one (one with a valid cookie
// does, clientHello); it stops resending the old flight on its own timer,
// which needs no trust: a device still in the old handshake repeats its
// flight, and the server answers that as before.

// hush stops the handshake's timer-driven resends: a ClientHello with
// another client random came from its address.
func (c *udpConn) hush() {
	c.amu.Lock()
	c.hushed = true
	c.amu.Unlock()
}

// resend writes the handshake's timer-driven retransmission unless it was
// hushed, and returns how many datagrams it wrote. The check and the
// writes hold amu, so that none begins after hush returns.
func (c *udpConn) resend(out [][]byte) int {
	c.amu.Lock()
	defer c.amu.Unlock()
	if c.hushed {
		return 0
	}
	for _, o := range out {
		c.u.write(c.pc, o, c.addr)
	}
	return len(out)
}
