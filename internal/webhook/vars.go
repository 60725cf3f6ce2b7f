package webhook

import (
	"bytes"
	"encoding/base64"
	"strconv"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/webhook/template"
)

// publishedAtLayout formats PARTICLE_PUBLISHED_AT and the default
// published_at field: ISO 8601 in UTC with milliseconds, as Particle does.
const publishedAtLayout = "2006-01-02T15:04:05.000Z"

// Template variables (docs/particle-api.md#the-outgoing-request). Every value
// is a string; variables that do not apply (PRODUCT_* of a sandbox hook) are
// empty.
//
//	PARTICLE_DEVICE_ID     the publisher's device ID ("api" for API publishes); alias SPARK_CORE_ID
//	PARTICLE_EVENT_NAME    the event name; alias SPARK_EVENT_NAME
//	PARTICLE_EVENT_VALUE   the event data; alias SPARK_EVENT_VALUE
//	PARTICLE_PUBLISHED_AT  2006-01-02T15:04:05.000Z; alias SPARK_PUBLISHED_AT
//	PARTICLE_EVENT_ID      the bus event ID (decimal)
//	PRODUCT_ID             the product of a product hook, or of the event's device
//	PRODUCT_USER_ID        product hooks: the device owner's user (or customer) ID
//	PRODUCT_VERSION        product hooks: the product firmware version the device reported
//	PARTICLE_EVENT_JSON    the default payload as a JSON object: {"event","data","published_at","coreid"}
//	PARTICLE_EVENT_BASE64  the event data, standard base64
//
// When the event data is a JSON object its keys are variables too, below
// these built-ins (a key named like a built-in is hidden by it).

// eventVars returns the built-in template variables of e for hook h.
func eventVars(h *store.Webhook, e *bus.Event) map[string]any {
	published := e.PublishedAt.UTC().Format(publishedAtLayout)
	var product, productUser, productVersion string
	switch {
	case h.ProductID != 0:
		product = strconv.FormatInt(h.ProductID, 10)
		productUser = e.UserID
		if productUser == "" {
			productUser = e.CustomerID
		}
		if e.ProductVersion != 0 {
			productVersion = strconv.Itoa(e.ProductVersion)
		}
	case e.ProductID != 0:
		product = strconv.FormatInt(e.ProductID, 10)
	}
	return map[string]any{
		"PARTICLE_DEVICE_ID":    e.DeviceID,
		"PARTICLE_EVENT_NAME":   e.Name,
		"PARTICLE_EVENT_VALUE":  e.Data,
		"PARTICLE_PUBLISHED_AT": published,
		"PARTICLE_EVENT_ID":     strconv.FormatUint(e.ID, 10),
		"PRODUCT_ID":            product,
		"PRODUCT_USER_ID":       productUser,
		"PRODUCT_VERSION":       productVersion,
		"PARTICLE_EVENT_JSON":   string(appendJSON(nil, defaultObject(e, published))),
		"PARTICLE_EVENT_BASE64": base64.StdEncoding.EncodeToString([]byte(e.Data)),
		"SPARK_CORE_ID":         e.DeviceID,
		"SPARK_EVENT_NAME":      e.Name,
		"SPARK_EVENT_VALUE":     e.Data,
		"SPARK_PUBLISHED_AT":    published,
	}
}

// defaultFields are the default data of a request
// (docs/particle-api.md#the-outgoing-request), in the order they are sent.
func defaultFields(e *bus.Event, published string) [4][2]string {
	return [4][2]string{
		{"event", e.Name},
		{"data", e.Data},
		{"published_at", published},
		{"coreid", e.DeviceID},
	}
}

// defaultObject is the default data as a JSON object.
func defaultObject(e *bus.Event, published string) *jsonObject {
	o := &jsonObject{}
	for _, f := range defaultFields(e, published) {
		o.set(f[0], f[1])
	}
	return o
}

// eventContext is the template context of e for hook h: the built-in
// variables over the keys of the event data when it is a JSON object.
func eventContext(h *store.Webhook, e *bus.Event) template.Context {
	vars := eventVars(h, e)
	if obj := dataObject(e.Data); obj != nil {
		return template.Context{obj, vars}
	}
	return template.Context{vars}
}

// dataObject decodes data when it is exactly one JSON object (numbers keep
// their text), else returns nil.
func dataObject(data string) map[string]any {
	b := bytes.TrimLeft([]byte(data), " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	return decodeObject(b)
}

// decodeObject decodes one JSON object, numbers as json.Number; nil if b
// is anything else or has trailing data.
func decodeObject(b []byte) map[string]any {
	v, err := decodeNumbers(b)
	if err != nil {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}
