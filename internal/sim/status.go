package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// Status is one progress report of a run in machine-readable form: the
// line `wick sim --status-json` prints to stderr every --progress, in every
// phase, so that a parent process (`wick bench --sim-processes`) can add
// up several simulators.
type Status struct {
	Phase           string `json:"phase"` // keys, provision, connect, run, stop
	Devices         int    `json:"devices"`
	Keys            int64  `json:"keys"`
	KeysGenerated   int64  `json:"keys_generated"`
	Provisioned     int64  `json:"provisioned"`
	ProvisionFailed int64  `json:"provision_failed"`
	Connected       int64  `json:"connected"` // devices online at least once
	Online          int64  `json:"online"`    // devices online now, as the devices see it
	Failing         int64  `json:"failing"`   // never online, first attempt failed
	// Handshakes counts connections that reached online, Resumptions the
	// part of them that resumed a saved DTLS session (no handshake).
	Handshakes    int64 `json:"handshakes"`
	Resumptions   int64 `json:"resumptions"`
	ConnectErrors int64 `json:"connect_errors"`
	Disconnects   int64 `json:"disconnects"`
	Calls         int64 `json:"calls"`
	// Ready reports that the ramp-up is over (Config.Ready's moment).
	Ready bool `json:"ready"`
}

// statusPrefix starts every status line, so that a reader can tell them
// from log lines on the same stream.
var statusPrefix = []byte(`{"phase":`)

// status returns the counters now.
func (s *sim) status(phase string) Status {
	return Status{
		Phase: phase, Devices: len(s.devices),
		Keys: s.c.keys.Load(), KeysGenerated: s.c.keysGenerated.Load(),
		Provisioned: s.c.provisioned.Load(), ProvisionFailed: s.c.provisionFailed.Load(),
		Connected: s.c.connected.Load(), Online: s.c.online.Load(), Failing: s.c.failing.Load(),
		Handshakes: s.c.handshakes.Load(), Resumptions: s.c.resumptions.Load(),
		ConnectErrors: s.c.connectErrors.Load(), Disconnects: s.c.disconnects.Load(),
		Calls: s.c.calls.Load(), Ready: phase == "run" || phase == "stop",
	}
}

// statusLine renders a Status as its one-line JSON.
func statusLine(st Status) string {
	b, _ := json.Marshal(st) // a struct of plain fields: cannot fail
	return string(b)
}

// ReadStatus reads r line by line until it ends, calls fn with every
// status line (Config.StatusJSON) and other with every other line (logs;
// nil drops them). It returns r's read error, nil at EOF.
func ReadStatus(r io.Reader, fn func(Status), other func(line []byte)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, statusPrefix) {
			var st Status
			if err := json.Unmarshal(line, &st); err == nil {
				fn(st)
				continue
			}
		}
		if other != nil {
			other(line)
		}
	}
	return sc.Err()
}
