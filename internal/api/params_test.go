package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// paramCases are shared by the table test and the fuzzer's seeds.
var paramCases = []struct {
	name, contentType, body, query string
	want                           string // JSON of the params, or "" when an error is expected
	status                         int    // expected error status
}{
	{"query only", "", "", "a=1&b=x", `{"a":"1","b":"x"}`, 0},
	{"form", "application/x-www-form-urlencoded", "username=a%40b.c&password=p+w", "",
		`{"username":"a@b.c","password":"p w"}`, 0},
	{"form with charset", "application/x-www-form-urlencoded; charset=UTF-8", "x=1", "", `{"x":"1"}`, 0},
	{"brackets", "application/x-www-form-urlencoded",
		"account_info[first_name]=Ada&account_info[last_name]=L&groups[]=a&groups[]=b", "",
		`{"account_info":{"first_name":"Ada","last_name":"L"},"groups":["a","b"]}`, 0},
	{"nested brackets", "application/x-www-form-urlencoded", "a[b][c]=1&a[b][d][]=2", "",
		`{"a":{"b":{"c":"1","d":["2"]}}}`, 0},
	{"repeated plain key", "application/x-www-form-urlencoded", "s=1&s=2", "", `{"s":["1","2"]}`, 0},
	{"malformed bracket kept literally", "application/x-www-form-urlencoded", "a[b=1&c]=2&[x]=3", "",
		`{"a[b":"1","c]":"2","[x]":"3"}`, 0},
	{"body wins over query", "application/json", `{"a":"body"}`, "a=query&b=q", `{"a":"body","b":"q"}`, 0},
	{"form body wins over query", "application/x-www-form-urlencoded", "a=body", "a=query&b=q", `{"a":"body","b":"q"}`, 0},
	{"JSON types", "application/json", `{"n":7776000,"f":1.5,"t":true,"z":null,"o":{"k":[1,"2"]}}`, "",
		`{"n":7776000,"f":1.5,"t":true,"z":null,"o":{"k":[1,"2"]}}`, 0},
	{"JSON suffix type", "application/vnd.api+json", `{"a":1}`, "", `{"a":1}`, 0},
	{"sniffed JSON", "", ` {"a":1}`, "", `{"a":1}`, 0},
	{"sniffed form", "", `a=1`, "", `{"a":"1"}`, 0},
	{"blank body with a type", "application/json", "  ", "", `{}`, 0},
	{"multipart", "multipart/form-data; boundary=B",
		"--B\r\nContent-Disposition: form-data; name=\"a[b]\"\r\n\r\nv\r\n--B--\r\n", "", `{"a":{"b":"v"}}`, 0},
	{"unparsable query ignored", "", "", "a=%zz&b=1", `{"b":"1"}`, 0},
	{"malformed JSON", "application/json", `{"a":`, "", "", 400},
	{"JSON array", "application/json", `[1]`, "", "", 400},
	{"JSON string", "application/json", `"s"`, "", "", 400},
	{"two JSON values", "application/json", `{}{}`, "", "", 400},
	{"bad form escape", "application/x-www-form-urlencoded", "a=%zz", "", "", 400},
	{"multipart without boundary", "multipart/form-data", "x", "", "", 400},
	{"XML", "text/xml", "<a/>", "", "", 415},
	{"bad media type", "/;;", "x", "", "", 415},
}

func TestDecodeParams(t *testing.T) {
	for _, tt := range paramCases {
		t.Run(tt.name, func(t *testing.T) {
			p, form, err := decodeParams(tt.contentType, []byte(tt.body), tt.query)
			if form != nil {
				defer form.RemoveAll()
			}
			if tt.want == "" {
				var e *Error
				if !errors.As(err, &e) || e.Status != tt.status {
					t.Fatalf("err = %v, want status %d", err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			b, _ := json.Marshal(p)
			_ = json.Unmarshal(b, &got)
			_ = json.Unmarshal([]byte(tt.want), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %s, want %s", b, tt.want)
			}
		})
	}
}

func TestParamCoercion(t *testing.T) {
	p, _, err := decodeParams("application/json",
		[]byte(`{"t1":true,"t2":"true","t3":"1","t4":1,"f1":false,"f2":"0","f3":"","x":"maybe","n1":"7776000","n2":7776000,"n3":7.776e6,"n4":"1.5","n5":true,"n6":null,"list":["a",1,"",{"o":1}],"obj":{"1":"b","0":"a"}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"t1", "t2", "t3", "t4"} {
		if v, ok := p.boolean(key); !v || !ok {
			t.Errorf("boolean(%s) = %v, %v", key, v, ok)
		}
	}
	for _, key := range []string{"f1", "f2", "f3"} {
		if v, ok := p.boolean(key); v || !ok {
			t.Errorf("boolean(%s) = %v, %v", key, v, ok)
		}
	}
	if _, ok := p.boolean("x"); ok {
		t.Error("boolean(x) ok")
	}
	for _, key := range []string{"n1", "n2", "n3"} {
		if n, ok, err := p.integer(key); n != 7776000 || !ok || err != nil {
			t.Errorf("integer(%s) = %v, %v, %v", key, n, ok, err)
		}
	}
	for _, key := range []string{"n4", "n5"} {
		if _, _, err := p.integer(key); err == nil {
			t.Errorf("integer(%s): no error", key)
		}
	}
	if _, ok, err := p.integer("n6"); ok || err != nil {
		t.Error("integer(null) should be absent")
	}
	if got := p.str("n2"); got != "7776000" {
		t.Errorf("str(n2) = %q", got)
	}
	if got := p.str("t1"); got != "true" {
		t.Errorf("str(t1) = %q", got)
	}
	if got := p.list("list"); !reflect.DeepEqual(got, []string{"a", "1"}) {
		t.Errorf("list(list) = %q", got)
	}
	if got := p.list("obj"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("list(obj) = %q", got)
	}
	if got := p.list("t2"); !reflect.DeepEqual(got, []string{"true"}) {
		t.Errorf("list(t2) = %q", got)
	}
}

// FuzzDecodeParams feeds arbitrary bodies, types and queries to the
// decoder: it must never panic, its errors must be 400, 413 or 415 API
// errors, and its output must be JSON-encodable with every plain form key
// holding the first value url.ParseQuery sees.
func FuzzDecodeParams(f *testing.F) {
	for _, tt := range paramCases {
		f.Add(tt.contentType, tt.body, tt.query)
		// nats-style: also each body split in two halves.
		f.Add(tt.contentType, tt.body[:len(tt.body)/2], tt.query)
	}
	f.Fuzz(func(t *testing.T, contentType, body, query string) {
		p, form, err := decodeParams(contentType, []byte(body), query)
		if form != nil {
			defer form.RemoveAll()
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusUnsupportedMediaType) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil params without error")
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("params not encodable: %v", err)
		}
		// Accessors never panic whatever the value types.
		for k := range p {
			p.str(k)
			p.boolean(k)
			p.integer(k)
			p.list(k)
			p.object(k)
		}
		// A form body's plain keys carry the form's values.
		if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") && strings.TrimSpace(body) != "" {
			vals, err := url.ParseQuery(body)
			if err != nil {
				t.Fatalf("decoded a form url.ParseQuery rejects: %v", err)
			}
		keys:
			for k, vs := range vals {
				if strings.ContainsAny(k, "[]") {
					continue
				}
				for other := range vals {
					if strings.HasPrefix(other, k+"[") {
						continue keys // a[b] turned a into an object
					}
				}
				if got := p.str(k); got != vs[0] {
					t.Fatalf("key %q = %q, want %q", k, got, vs[0])
				}
			}
		}
	})
}
