package cloud

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// maxSSELine bounds one line of an event stream; a longer line ends the
// connection with an error (Wick's events are far smaller).
const maxSSELine = 1 << 20

// errLineTooLong is the error of a line over maxSSELine.
var errLineTooLong = errors.New("cloud: event stream line too long")

// sseEvent is one event of the text/event-stream format, before its data
// is decoded.
type sseEvent struct {
	id, name, data string
	hasID          bool // the event set the ID (possibly to "")
	hasData        bool // the event is to be dispatched (else it only sets the ID)
}

// sseParser reads the text/event-stream format: "field: value" lines,
// comments starting with ':', events ended by a blank line, lines ended by
// LF, CRLF or CR.
type sseParser struct {
	r       *bufio.Reader
	line    []byte
	retry   time.Duration // the last "retry:" field, 0 if none
	comment func(string)  // called for each comment line, if set
}

// newSSEParser returns a parser of r.
func newSSEParser(r io.Reader, comment func(string)) *sseParser {
	return &sseParser{r: bufio.NewReaderSize(r, 4096), comment: comment}
}

// readLine returns the next line without its end. A CR alone ends a line
// too; a CR followed by LF counts once.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		b, err := p.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && len(p.line) > 0 {
				// A final line without its end is not complete: the
				// event it belongs to is dropped, as the format says.
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch b {
		case '\n':
			return p.line, nil
		case '\r':
			if nb, err := p.r.Peek(1); err == nil && nb[0] == '\n' {
				_, _ = p.r.ReadByte()
			}
			return p.line, nil
		}
		if len(p.line) >= maxSSELine {
			return nil, errLineTooLong
		}
		p.line = append(p.line, b)
	}
}

// next returns the next event that has data, or that only sets the last
// event ID (hasData false). io.EOF means the stream ended between events.
func (p *sseParser) next() (sseEvent, error) {
	var (
		ev      sseEvent
		data    bytes.Buffer
		hasData bool
	)
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.data, ev.hasData = data.String(), true
				return ev, nil
			}
			ev = sseEvent{id: ev.id, hasID: ev.hasID}
			if ev.hasID {
				// An ID without data still moves the stream's last ID.
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			if p.comment != nil {
				p.comment(string(bytes.TrimPrefix(line[1:], []byte(" "))))
			}
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id, ev.hasID = string(value), true
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 31); err == nil {
				p.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

// String describes the event for test failures.
func (e sseEvent) String() string {
	return fmt.Sprintf("id=%q event=%q data=%q", e.id, e.name, e.data)
}
