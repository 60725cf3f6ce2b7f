package sim

import (
	"strings"
	"testing"
)

// TestReadStatus: status lines come back as written, other lines go to
// the other callback, and a line that only looks like a status is a log
// line.
func TestReadStatus(t *testing.T) {
	want := Status{Phase: "run", Devices: 17000, Connected: 16999, Online: 16998, Handshakes: 17010, Resumptions: 9, Ready: true}
	in := "time=x level=WARN msg=hello\n" + statusLine(want) + "\n" + `{"phase": broken` + "\n"
	var got []Status
	var other []string
	if err := ReadStatus(strings.NewReader(in), func(s Status) { got = append(got, s) }, func(l []byte) { other = append(other, string(l)) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("statuses %+v, want [%+v]", got, want)
	}
	if len(other) != 2 || !strings.Contains(other[0], "hello") {
		t.Errorf("other lines %q", other)
	}
}
