package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/webhook/template"
)

// varsEvent is the event of the variable tests.
func varsEvent() bus.Event {
	return bus.Event{
		ID:             9001,
		Name:           "env/temp",
		Data:           `{"temp":21.50,"PARTICLE_EVENT_NAME":"spoofed","loc":{"lat":1},"list":[3,4]}`,
		TTL:            60,
		PublishedAt:    time.Date(2017, 2, 1, 21, 8, 5, 763_400_000, time.FixedZone("X", 3600)),
		DeviceID:       "3f002b000000000000000000",
		UserID:         "owner1",
		ProductID:      0,
		ProductVersion: 0,
	}
}

func TestTemplateVariables(t *testing.T) {
	sandbox := &store.Webhook{UserID: "owner1"}
	product := &store.Webhook{UserID: "creator", ProductID: 1234}
	e := varsEvent()
	pe := e
	pe.ProductID, pe.ProductVersion = 1234, 17
	ce := pe
	ce.UserID, ce.CustomerID = "", "cust9"
	plain := e
	plain.Data = "hello <world>"
	inProduct := e
	inProduct.ProductID = 55

	const eventJSON = `{"event":"env/temp","data":"{\"temp\":21.50,\"PARTICLE_EVENT_NAME\":\"spoofed\",\"loc\":{\"lat\":1},\"list\":[3,4]}","published_at":"2017-02-01T20:08:05.763Z","coreid":"3f002b000000000000000000"}`
	tests := []struct {
		name string
		h    *store.Webhook
		e    bus.Event
		tmpl string
		want string
	}{
		{"device id", sandbox, e, "{{PARTICLE_DEVICE_ID}}", "3f002b000000000000000000"},
		{"event name", sandbox, e, "{{PARTICLE_EVENT_NAME}}", "env/temp"},
		{"event value raw", sandbox, plain, "{{{PARTICLE_EVENT_VALUE}}}", "hello <world>"},
		{"event value escaped", sandbox, plain, "{{PARTICLE_EVENT_VALUE}}", "hello &lt;world&gt;"},
		{"published at UTC with ms", sandbox, e, "{{PARTICLE_PUBLISHED_AT}}", "2017-02-01T20:08:05.763Z"},
		{"event id", sandbox, e, "{{PARTICLE_EVENT_ID}}", "9001"},
		{"sandbox product id empty", sandbox, e, "[{{PRODUCT_ID}}]", "[]"},
		{"sandbox product id of device", sandbox, inProduct, "[{{PRODUCT_ID}}]", "[55]"},
		{"sandbox product user empty", sandbox, e, "[{{PRODUCT_USER_ID}}][{{PRODUCT_VERSION}}]", "[][]"},
		{"product id", product, pe, "{{PRODUCT_ID}}", "1234"},
		{"product user id", product, pe, "{{PRODUCT_USER_ID}}", "owner1"},
		{"product customer id", product, ce, "{{PRODUCT_USER_ID}}", "cust9"},
		{"product version", product, pe, "{{PRODUCT_VERSION}}", "17"},
		{"product version unknown", product, e, "[{{PRODUCT_VERSION}}]", "[]"},
		{"event json", sandbox, e, "{{{PARTICLE_EVENT_JSON}}}", eventJSON},
		{"event base64", sandbox, plain, "{{PARTICLE_EVENT_BASE64}}", "aGVsbG8gPHdvcmxkPg=="},
		{"spark core id", sandbox, e, "{{SPARK_CORE_ID}}", "3f002b000000000000000000"},
		{"spark event name", sandbox, e, "{{SPARK_EVENT_NAME}}", "env/temp"},
		{"spark event value", sandbox, plain, "{{{SPARK_EVENT_VALUE}}}", "hello <world>"},
		{"spark published at", sandbox, e, "{{SPARK_PUBLISHED_AT}}", "2017-02-01T20:08:05.763Z"},
		{"data key keeps number text", sandbox, e, "{{temp}}", "21.50"},
		{"data nested", sandbox, e, "{{loc.lat}}/{{list.1}}", "1/4"},
		{"data section", sandbox, e, "{{#list}}<{{.}}>{{/list}}", "<3><4>"},
		{"built-ins win over data", sandbox, e, "{{PARTICLE_EVENT_NAME}}", "env/temp"},
		{"non-object data has no keys", sandbox, plain, "[{{temp}}]", "[]"},
	}
	for _, tc := range tests {
		got, err := template.Render(tc.tmpl, eventContext(tc.h, &tc.e))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: %s = %q; want %q", tc.name, tc.tmpl, got, tc.want)
		}
	}
}

func TestEventJSONIsValid(t *testing.T) {
	e := varsEvent()
	e.Data = "bin\x00\xff\"\n</script>"
	vars := eventVars(&store.Webhook{}, &e)
	var got map[string]string
	if err := json.Unmarshal([]byte(vars["PARTICLE_EVENT_JSON"].(string)), &got); err != nil {
		t.Fatalf("PARTICLE_EVENT_JSON is not JSON: %v", err)
	}
	if got["data"] != "bin\x00\ufffd\"\n</script>" || got["event"] != e.Name || got["coreid"] != e.DeviceID {
		t.Errorf("PARTICLE_EVENT_JSON = %q", vars["PARTICLE_EVENT_JSON"])
	}
	if s := vars["PARTICLE_EVENT_JSON"].(string); strings.Contains(s, `\u003c`) {
		t.Errorf("HTML-escaped JSON: %s", s)
	}
}

func TestDataObject(t *testing.T) {
	tests := []struct {
		data string
		keys int // -1: not an object
	}{
		{`{"a":1}`, 1},
		{`  {"a":1,"b":{}}  `, 2},
		{`{}`, 0},
		{`{"a":1} {"b":2}`, -1},
		{`{"a":1}x`, -1},
		{`{"a":`, -1},
		{`[1,2]`, -1},
		{`"str"`, -1},
		{`12`, -1},
		{``, -1},
		{`null`, -1},
	}
	for _, tc := range tests {
		m := dataObject(tc.data)
		if (m == nil) != (tc.keys < 0) || (m != nil && len(m) != tc.keys) {
			t.Errorf("dataObject(%q) = %v; want %d keys", tc.data, m, tc.keys)
		}
	}
}
