package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// Events (docs/particle-protocol.md#events ✔), both directions:
//
//	POST  0xB1 'E'|'e'            private | public ('e' also from 3.3.1 for PUBLIC)
//	      0x0N / 0x0D n-13 name   one option, may contain '/'
//	      [Content-Format]        6.x only; never send it to ≤3.x devices
//	      0x33 ttl(3 bytes)       Max-Age, omitted when the TTL is 60
//	      0xFF data               ≤ 1024 bytes
//
// No token. TCP: NON by default; UDP: CON (answered with an empty ACK).
//
// Subscriptions (D→S):
//
//	GET   0xB1 'e' | prefix | [Uri-Query 'u' (my devices) / 'b' (binary) / 'c' (CBOR)]
//	      [0xFF 24-char device id: only that device's events (old firmware)]

// Event limits (docs/particle-protocol.md#events).
const (
	DefaultEventTTL = 60        // seconds; the Max-Age option is omitted for it
	MaxEventTTL     = 1<<24 - 1 // Max-Age is sent as 3 bytes
	MaxEventNameLen = 64
	MaxEventDataLen = 1024
)

// Event is a published event in either direction.
type Event struct {
	Name string
	// Data is the payload; parsed events own it.
	Data []byte
	// Private selects 'E' (private) over 'e' (public).
	Private bool
	// TTL in seconds. Like the firmware, encoding omits Max-Age only for
	// DefaultEventTTL (so set it for the default); parsing yields
	// DefaultEventTTL when Max-Age is absent.
	TTL uint32
	// ContentFormat is meaningful when HasContentFormat (6.x devices only).
	ContentFormat    ContentFormat
	HasContentFormat bool
}

// ErrEventTTL means a TTL above MaxEventTTL.
var ErrEventTTL = errors.New("protocol: event ttl above 16777215")

// NewEvent returns POST e|E/<name> of type typ (NON over TCP, CON over UDP),
// laid out exactly as Device OS lays it out (Max-Age as 3 bytes).
func NewEvent(typ Type, id uint16, e Event) (Message, error) {
	if e.TTL > MaxEventTTL {
		return Message{}, ErrEventTTL
	}
	path := byte(PathEventPublic)
	if e.Private {
		path = PathEventPrivate
	}
	m := request(typ, CodePOST, id, nil, path)
	m.AddOption(OptionURIPath, []byte(e.Name))
	if e.HasContentFormat {
		m.AddUintOption(OptionContentFormat, uint32(e.ContentFormat))
	}
	if e.TTL != DefaultEventTTL {
		m.AddOption(OptionMaxAge, []byte{byte(e.TTL >> 16), byte(e.TTL >> 8), byte(e.TTL)})
	}
	m.Payload = e.Data
	return m, nil
}

// ParseEvent decodes POST e|E. The name may arrive split over several
// Uri-Path options or as one "e/name" option (both are joined).
func ParseEvent(m *Message) (Event, error) {
	if err := expectKind(m, KindEvent); err != nil {
		return Event{}, err
	}
	name, err := resourceName(m)
	if err != nil {
		return Event{}, err
	}
	e := Event{Name: name, Private: m.PathKind() == PathEventPrivate, TTL: DefaultEventTTL}
	ttl, ok, err := m.UintOption(OptionMaxAge)
	if err != nil {
		return Event{}, fmt.Errorf("protocol: event max-age: %w", err)
	}
	if ok {
		e.TTL = ttl
	}
	cf, ok, err := m.UintOption(OptionContentFormat)
	if err != nil || cf > 0xFFFF {
		return Event{}, fmt.Errorf("protocol: event content format: %w", ErrOptionFormat)
	}
	e.ContentFormat, e.HasContentFormat = ContentFormat(cf), ok
	if len(m.Payload) > 0 {
		e.Data = append([]byte(nil), m.Payload...)
	}
	return e, nil
}

// IsSystemEventName reports whether name is a system event
// (docs/particle-protocol.md#events, docs/particle-protocol.md#system-events):
// it starts with "spark/" or "particle/".
func IsSystemEventName(name string) bool {
	return strings.HasPrefix(name, "spark/") || strings.HasPrefix(name, "particle/")
}

// Subscription is a device's event subscription.
type Subscription struct {
	// Prefix is the event-name prefix the device wants.
	Prefix string
	// MyDevices is Uri-Query 'u': events of the owner's devices only (old
	// scope; 3.3.1 sends it for the system prefixes "spark" and "particle").
	MyDevices bool
	// Binary ('b') and CBOR ('c') announce the data formats a 6.x handler accepts.
	Binary bool
	CBOR   bool
	// DeviceID, when set, limits the subscription to that device (old firmware).
	DeviceID string
}

// NewSubscribe returns GET e/<prefix> without token (CON; 6.x over TCP: NON).
func NewSubscribe(typ Type, id uint16, s Subscription) Message {
	m := request(typ, CodeGET, id, nil, PathEventPublic)
	m.AddOption(OptionURIPath, []byte(s.Prefix))
	for _, q := range []struct {
		on bool
		c  byte
	}{{s.MyDevices, 'u'}, {s.Binary, 'b'}, {s.CBOR, 'c'}} {
		if q.on {
			m.AddOption(OptionURIQuery, []byte{q.c})
		}
	}
	if s.DeviceID != "" {
		m.Payload = []byte(s.DeviceID)
	}
	return m
}

// ParseSubscribe decodes GET e|E. Unknown query values are ignored; an empty
// prefix (no name option) is returned as "" and left to the caller to refuse.
func ParseSubscribe(m *Message) (Subscription, error) {
	if err := expectKind(m, KindSubscribe); err != nil {
		return Subscription{}, err
	}
	prefix, ok := m.PathName()
	if !ok {
		return Subscription{}, ErrResourceName
	}
	s := Subscription{Prefix: prefix, DeviceID: string(m.Payload)}
	for _, o := range m.Options {
		if o.Number != OptionURIQuery || len(o.Value) != 1 {
			continue
		}
		switch o.Value[0] {
		case 'u':
			s.MyDevices = true
		case 'b':
			s.Binary = true
		case 'c':
			s.CBOR = true
		}
	}
	return s, nil
}
