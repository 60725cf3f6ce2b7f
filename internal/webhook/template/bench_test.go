package template

import (
	"encoding/json"
	"testing"
)

// benchTemplate is a typical webhook JSON body template.
const benchTemplate = `{"device":"{{{PARTICLE_DEVICE_ID}}}","event":"{{PARTICLE_EVENT_NAME}}",` +
	`"temp":{{temp}},"when":"{{PARTICLE_PUBLISHED_AT}}","tags":[{{#tags}}"{{.}}",{{/tags}}""],` +
	`"loc":"{{loc.lat}},{{loc.lng}}"}`

func benchContext(b *testing.B) Context {
	var data any
	if err := json.Unmarshal([]byte(`{"temp":21.5,"tags":["a","b","c"],"loc":{"lat":48.85,"lng":2.35}}`), &data); err != nil {
		b.Fatal(err)
	}
	vars := map[string]any{
		"PARTICLE_DEVICE_ID":    "0123456789abcdef01234567",
		"PARTICLE_EVENT_NAME":   "temperature",
		"PARTICLE_PUBLISHED_AT": "2024-05-01T12:00:00.000Z",
	}
	return Context{data, vars}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchTemplate); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	tm, err := Parse(benchTemplate)
	if err != nil {
		b.Fatal(err)
	}
	ctx := benchContext(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = tm.Render(ctx)
	}
}

func BenchmarkRenderStatic(b *testing.B) {
	tm, err := Parse("https://example.com/hook")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tm.Render(nil)
	}
}
