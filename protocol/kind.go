package protocol

import (
	"errors"
	"fmt"
)

// Kind names a message of the catalogue
// (docs/particle-protocol.md#message-catalogue), derived from the code, the
// type and the first Uri-Path letter.
type Kind uint8

// Message kinds. Direction is noted as D→S (device to server) or S→D.
const (
	KindUnknown         Kind = iota // anything else: ignore (a CON may get RST or 4.00)
	KindHello                       // POST h, both directions
	KindDescribeRequest             // GET d, S→D
	KindDescribePost                // POST d, D→S (device-initiated describe)
	KindFunctionCall                // POST f, S→D
	KindVariableRequest             // GET v, S→D
	KindEvent                       // POST e|E, both directions
	KindSubscribe                   // GET e|E, D→S
	KindTimeRequest                 // GET t, D→S
	KindSignal                      // PUT s, S→D
	KindGoodbye                     // POST x, D→S
	KindKeyChange                   // PUT k, S→D
	KindServerMoved                 // POST M, S→D (never sent by Wick)
	KindUpdateBegin                 // POST u, S→D (OTA v1)
	KindChunk                       // POST c, S→D (OTA v1)
	KindChunkMissed                 // GET c, D→S (OTA v1)
	KindUpdateDone                  // PUT u, both directions (OTA v1)
	KindUpdateStart                 // POST S (OTA v3)
	KindUpdateChunk                 // POST C (OTA v3)
	KindUpdateFinish                // POST F (OTA v3)
	KindPing                        // CON 0.00
	KindEmptyACK                    // ACK 0.00
	KindReset                       // RST
	KindResponse                    // 2.xx/4.xx/5.xx, piggy-backed (ACK) or separate (token)
)

var kindNames = [...]string{
	KindUnknown: "unknown", KindHello: "hello", KindDescribeRequest: "describe-request",
	KindDescribePost: "describe-post", KindFunctionCall: "function-call",
	KindVariableRequest: "variable-request", KindEvent: "event", KindSubscribe: "subscribe",
	KindTimeRequest: "time-request", KindSignal: "signal", KindGoodbye: "goodbye",
	KindKeyChange: "key-change", KindServerMoved: "server-moved", KindUpdateBegin: "update-begin",
	KindChunk: "chunk", KindChunkMissed: "chunk-missed", KindUpdateDone: "update-done",
	KindUpdateStart: "update-start", KindUpdateChunk: "update-chunk",
	KindUpdateFinish: "update-finish", KindPing: "ping", KindEmptyACK: "empty-ack",
	KindReset: "reset", KindResponse: "response",
}

// String returns a short lower-case name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Path letters: the first Uri-Path option of a request
// (docs/particle-protocol.md#coap-encoding,
// docs/particle-protocol.md#message-catalogue).
const (
	PathHello        = 'h'
	PathDescribe     = 'd'
	PathFunction     = 'f'
	PathVariable     = 'v'
	PathEventPublic  = 'e'
	PathEventPrivate = 'E'
	PathTime         = 't'
	PathSignal       = 's'
	PathGoodbye      = 'x'
	PathKeyChange    = 'k'
	PathServerMoved  = 'M'
	PathUpdate       = 'u'
	PathChunk        = 'c'
	PathUpdateStart  = 'S'
	PathUpdateChunk  = 'C'
	PathUpdateFinish = 'F'
)

// Classify returns the catalogue kind of m without allocating.
func Classify(m *Message) Kind {
	switch {
	case m.Code == CodeEmpty:
		switch m.Type {
		case Confirmable:
			return KindPing
		case Acknowledgement:
			return KindEmptyACK
		case Reset:
			return KindReset
		}
		return KindUnknown
	case m.Type == Reset:
		return KindReset
	case m.Code.IsResponse():
		return KindResponse
	}
	switch p := m.PathKind(); m.Code {
	case CodeGET:
		switch p {
		case PathDescribe:
			return KindDescribeRequest
		case PathVariable:
			return KindVariableRequest
		case PathEventPublic, PathEventPrivate:
			return KindSubscribe
		case PathTime:
			return KindTimeRequest
		case PathChunk:
			return KindChunkMissed
		}
	case CodePOST:
		switch p {
		case PathHello:
			return KindHello
		case PathDescribe:
			return KindDescribePost
		case PathFunction:
			return KindFunctionCall
		case PathEventPublic, PathEventPrivate:
			return KindEvent
		case PathGoodbye:
			return KindGoodbye
		case PathServerMoved:
			return KindServerMoved
		case PathUpdate:
			return KindUpdateBegin
		case PathChunk:
			return KindChunk
		case PathUpdateStart:
			return KindUpdateStart
		case PathUpdateChunk:
			return KindUpdateChunk
		case PathUpdateFinish:
			return KindUpdateFinish
		}
	case CodePUT:
		switch p {
		case PathSignal:
			return KindSignal
		case PathKeyChange:
			return KindKeyChange
		case PathUpdate:
			return KindUpdateDone
		}
	}
	return KindUnknown
}

// ErrWrongKind means a parser was given a message of another kind.
var ErrWrongKind = errors.New("protocol: message is not of the expected kind")

func expectKind(m *Message, k Kind) error {
	if got := Classify(m); got != k {
		return fmt.Errorf("%w: got %s, want %s", ErrWrongKind, got, k)
	}
	return nil
}

// request builds a request with the kind letter as first Uri-Path option.
func request(typ Type, code Code, id uint16, token []byte, path byte) Message {
	return Message{Type: typ, Code: code, ID: id, Token: token,
		Options: []Option{{Number: OptionURIPath, Value: []byte{path}}}}
}

func token1(t byte) []byte { return []byte{t} }

// NewEmptyACK returns the empty ACK (0.00) answering message id.
func NewEmptyACK(id uint16) Message { return Message{Type: Acknowledgement, Code: CodeEmpty, ID: id} }

// NewReset returns the RST refusing message id.
func NewReset(id uint16) Message { return Message{Type: Reset, Code: CodeEmpty, ID: id} }

// NewPing returns a CON 0.00 without token (docs/particle-protocol.md#ping); the peer
// answers with NewEmptyACK.
func NewPing(id uint16) Message { return Message{Type: Confirmable, Code: CodeEmpty, ID: id} }

// NewACK returns a piggy-backed response: an ACK for message id carrying
// code, the request's token (nil for none) and payload, e.g. a 4.00 refusal.
func NewACK(id uint16, token []byte, code Code, payload []byte) Message {
	return Message{Type: Acknowledgement, Code: code, ID: id, Token: token, Payload: payload}
}

// NewResponse returns a separate response
// (docs/particle-protocol.md#message-catalogue "sep"): a new message of type
// typ (NON over TCP, CON over UDP) carrying the request's 1-byte token.
func NewResponse(typ Type, id uint16, token byte, code Code, payload []byte) Message {
	return Message{Type: typ, Code: code, ID: id, Token: token1(token), Payload: payload}
}
