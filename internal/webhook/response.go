package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/webhook/template"
	"github.com/wick-cloud/wick/protocol"
)

// Published-back events (docs/particle-api.md#events-published-back).
const (
	// ChunkSize is the data size of every hook-response and hook-error
	// event but the last of a response.
	ChunkSize = 512
	// MaxResponseBytes caps the data published back for one response
	// (spark-server's limit); the rest is dropped.
	MaxResponseBytes = 100000
	// hookTTL is the TTL of published-back events.
	hookTTL = 60
	// sentData is the data of hook-sent events (what Particle sends).
	sentData = "undefined"
	// maxTopicLen bounds a rendered topic, leaving room for "/<index>"
	// under the bus's 255-byte name limit.
	maxTopicLen = 240
	// maxUnchunked is the largest event a device accepts, the limit of an
	// unchunked response.
	maxUnchunked = protocol.MaxEventDataLen
)

// hookEvent is an event published back for hook h: coreid
// "particle-internal", private, TTL 60, owned so that it reaches the
// hook's owner. A sandbox hook's events carry the hook's user: they reach
// the user's event streams (GET /v1/devices/events, /v1/events) and the
// user's devices subscribed to them. A product hook's events carry only
// the product: they reach the product's stream (GET
// /v1/products/:p/events) and every product device subscribed to them —
// hence the device ID in the default product topic — but no user's or
// customer's personal stream.
func hookEvent(h *store.Webhook, name, data string) bus.Event {
	ev := bus.Event{Name: name, Data: data, TTL: hookTTL, DeviceID: bus.DeviceInternal}
	if h.ProductID != 0 {
		ev.ProductID = h.ProductID
	} else {
		ev.UserID = h.UserID
	}
	return ev
}

// SentEvent is the hook-sent/<event name> event published when h's request
// for e is sent; its data is "undefined", as Particle's.
func SentEvent(h *store.Webhook, e bus.Event) bus.Event {
	return hookEvent(h, prefixSent+e.Name, sentData)
}

// ResponseEvents are the events published back for a 2xx answer to h's
// request for e (docs/particle-api.md#events-published-back). The data is the
// body; with dataUrlResponseEvent, "data:<contentType>;base64,<body>"; with a
// responseTemplate and a JSON body, the template rendered with the parsed body
// over the event's variables (a body that is not JSON is published as is). At
// most MaxResponseBytes are kept. The data is cut into ChunkSize-byte events
// named <topic>/0, <topic>/1, ...: the rendered responseTopic, or
// hook-response/<event name> for a sandbox hook and
// <device ID>/hook-response/<event name> for a product hook. With unchunked,
// one event <topic>/0 carries everything, or nothing is published when the
// data exceeds a device's 1024-byte limit. Empty data publishes nothing. The
// error reports a malformed responseTemplate or responseTopic.
func ResponseEvents(h *store.Webhook, e bus.Event, contentType string, body []byte) ([]bus.Event, error) {
	if len(body) == 0 {
		return nil, nil
	}
	s := &h.Settings
	var data string
	var tc template.Context
	switch {
	case s.DataURLResponseEvent:
		if contentType == "" {
			contentType = "application/octet-stream"
		}
		data = "data:" + contentType + ";base64," + base64.StdEncoding.EncodeToString(body)
	case s.ResponseTemplate != "":
		t, err := template.Parse(s.ResponseTemplate)
		if err != nil {
			return nil, &RequestError{"responseTemplate", err}
		}
		doc, err := decodeNumbers(body)
		if err != nil {
			data = string(body) // not JSON: published as is
			break
		}
		tc = eventContext(h, &e)
		out, err := t.RenderLimit(append(tc, doc), MaxResponseBytes)
		if err != nil && !errors.Is(err, template.ErrOutputLimit) {
			return nil, &RequestError{"responseTemplate", err}
		}
		data = out
	default:
		data = string(body)
	}
	if data == "" {
		return nil, nil
	}
	if tc == nil && strings.Contains(s.ResponseTopic, "{{") {
		tc = eventContext(h, &e)
	}
	topic, err := hookTopic(s.ResponseTopic, tc)
	if err != nil {
		return nil, &RequestError{"responseTopic", err}
	}
	if topic == "" {
		if h.ProductID != 0 {
			topic = e.DeviceID + "/" + prefixResponse + e.Name
		} else {
			topic = prefixResponse + e.Name
		}
	}
	if s.Unchunked {
		if len(data) > maxUnchunked {
			return nil, nil
		}
		return []bus.Event{hookEvent(h, topic+"/0", data)}, nil
	}
	return chunks(h, topic, data), nil
}

// ErrorEvents are the events published back when h's request for e
// failed (docs/particle-api.md#events-published-back): the data is message —
// e.g. "error status 404 from example.com" — followed, when body is not empty,
// by a newline and the body; at most MaxResponseBytes. It is cut into
// ChunkSize-byte events <topic>/0, <topic>/1, ..., where topic is the rendered
// errorResponseTopic or hook-error/<event name> (also when the topic template
// is malformed). With unchunked, one event <topic>/0 carries the data cut to a
// device's 1024-byte limit. There is always at least one event.
func ErrorEvents(h *store.Webhook, e bus.Event, message string, body []byte) []bus.Event {
	s := &h.Settings
	data := message
	if len(body) > 0 {
		n := min(len(body), max(0, MaxResponseBytes-len(data)-1))
		data += "\n" + string(body[:n])
	}
	var tc template.Context
	if strings.Contains(s.ErrorResponseTopic, "{{") {
		tc = eventContext(h, &e)
	}
	topic, err := hookTopic(s.ErrorResponseTopic, tc)
	if err != nil || topic == "" {
		topic = prefixError + e.Name
	}
	if s.Unchunked {
		return []bus.Event{hookEvent(h, topic+"/0", data[:min(len(data), maxUnchunked)])}
	}
	evs := chunks(h, topic, data)
	if len(evs) == 0 {
		evs = append(evs, hookEvent(h, topic+"/0", ""))
	}
	return evs
}

// chunks cuts data (at most MaxResponseBytes of it) into events
// <topic>/<index> of ChunkSize bytes, the last one shorter.
func chunks(h *store.Webhook, topic, data string) []bus.Event {
	data = data[:min(len(data), MaxResponseBytes)]
	evs := make([]bus.Event, 0, (len(data)+ChunkSize-1)/ChunkSize)
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), ChunkSize)
		evs = append(evs, hookEvent(h, topic+"/"+strconv.Itoa(i), data[:n]))
		data = data[n:]
	}
	return evs
}

// hookTopic renders a responseTopic or errorResponseTopic, cut to
// maxTopicLen bytes; "" means the default topic.
func hookTopic(src string, tc template.Context) (string, error) {
	if strings.TrimSpace(src) == "" {
		return "", nil
	}
	t, err := template.Parse(src)
	if err != nil {
		return "", err
	}
	out, _ := t.RenderLimit(tc, 4*maxTopicLen)
	out = strings.TrimSpace(out)
	return out[:min(len(out), maxTopicLen)], nil
}

// decodeNumbers decodes one JSON document with numbers as json.Number,
// rejecting trailing data.
func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("webhook: trailing data after JSON")
	}
	return v, nil
}
