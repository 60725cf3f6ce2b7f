package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params is the parameter set of a request
// (docs/particle-api.md#request-encodings): the query string overlaid by the
// body's fields. Values are string, bool, json.Number, nil (JSON null), []any
// or map[string]any. Form keys in bracket notation nest: a[b]=x gives
// {"a":{"b":"x"}} and g[]=1&g[]=2 gives {"g":["1","2"]}; a plain key given
// several times becomes a list.
type params map[string]any

// maxBracketDepth bounds nesting in bracket notation; deeper keys keep
// their remaining brackets literally.
const maxBracketDepth = 8

// Errors of parameter decoding.
var (
	errMalformedJSON   = errorf(http.StatusBadRequest, "Malformed JSON body")
	errJSONNotObject   = errorf(http.StatusBadRequest, "JSON body must be an object")
	errMalformedForm   = errorf(http.StatusBadRequest, "Malformed form body")
	errBodyTooLarge    = errorf(http.StatusRequestEntityTooLarge, "Request body too large")
	errUnsupportedType = errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type: use application/json or application/x-www-form-urlencoded")
)

// readParams reads the request body (at most limit bytes) and decodes it
// with the query string. The multipart form, if any, is returned for
// handlers that take files; the caller removes its temporary files.
func readParams(r *http.Request, w http.ResponseWriter, limit int64) (params, *multipart.Form, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, errBodyTooLarge
			}
			return nil, nil, &Error{Status: http.StatusBadRequest, Message: "Could not read request body", Cause: err}
		}
		body = b
	}
	return decodeParams(r.Header.Get("Content-Type"), body, r.URL.RawQuery)
}

// decodeParams merges the query string and a body of the given content
// type. Errors are *Error with status 400 or 415.
func decodeParams(contentType string, body []byte, rawQuery string) (params, *multipart.Form, error) {
	p := params{}
	if rawQuery != "" {
		// Unparsable query pairs are ignored like unknown parameters.
		q, _ := url.ParseQuery(rawQuery)
		p.setForm(q)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil, nil
	}
	mediaType, mparams, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		// curl without -H and some libraries send no type: sniff.
		mediaType, err = "application/x-www-form-urlencoded", nil
		if bytes.TrimSpace(body)[0] == '{' {
			mediaType = "application/json"
		}
	}
	if err != nil {
		return nil, nil, errUnsupportedType
	}
	b, form, err := decodeBody(mediaType, mparams, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range b {
		p[k] = v // body fields replace query parameters of the same name
	}
	return p, form, nil
}

// decodeBody decodes a non-empty body of the given media type.
func decodeBody(mediaType string, mparams map[string]string, body []byte) (params, *multipart.Form, error) {
	p := params{}
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		obj, err := decodeJSONObject(body)
		if err != nil {
			return nil, nil, err
		}
		return params(obj), nil, nil
	case mediaType == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, errMalformedForm
		}
		p.setForm(vals)
		return p, nil, nil
	case mediaType == "multipart/form-data":
		boundary := mparams["boundary"]
		if boundary == "" {
			return nil, nil, errMalformedForm
		}
		form, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(int64(len(body)) + 1)
		if err != nil {
			return nil, nil, errMalformedForm
		}
		p.setForm(form.Value)
		return p, form, nil
	}
	return nil, nil, errUnsupportedType
}

// decodeJSONObject decodes exactly one JSON object, numbers kept exact.
func decodeJSONObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errMalformedJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errMalformedJSON
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return nil, errJSONNotObject
	}
	return obj, nil
}

// setForm adds form values, expanding bracket notation. Keys are applied
// in sorted order so that conflicting keys resolve deterministically.
func (p params) setForm(vals url.Values) {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path := splitBrackets(k)
		for _, v := range vals[k] {
			setPath(p, path, v)
		}
	}
}

// splitBrackets splits "a[b][]" into ["a","b",""]. A key that does not
// follow the notation is returned whole.
func splitBrackets(key string) []string {
	i := strings.IndexByte(key, '[')
	if i <= 0 || !strings.HasSuffix(key, "]") {
		return []string{key}
	}
	path := []string{key[:i]}
	rest := key[i:]
	for rest != "" {
		if len(path) > maxBracketDepth || rest[0] != '[' {
			return []string{key}
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return []string{key}
		}
		seg := rest[1:j]
		if strings.ContainsRune(seg, '[') {
			return []string{key}
		}
		path = append(path, seg)
		rest = rest[j+1:]
	}
	return path
}

// setPath stores v at path inside m, creating maps on the way. "" as the
// last segment appends to a list; a plain key seen twice becomes a list.
func setPath(m map[string]any, path []string, v string) {
	for len(path) > 1 {
		key := path[0]
		if len(path) == 2 && path[1] == "" {
			list, _ := m[key].([]any)
			m[key] = append(list, v)
			return
		}
		child, isMap := m[key].(map[string]any)
		if !isMap {
			child = map[string]any{}
			m[key] = child
		}
		m, path = child, path[1:]
	}
	switch old := m[path[0]].(type) {
	case string:
		m[path[0]] = []any{old, v}
	case []any:
		m[path[0]] = append(old, v)
	default:
		m[path[0]] = v
	}
}

// has reports whether key is present, even as JSON null.
func (p params) has(key string) bool {
	_, found := p[key]
	return found
}

// str returns key as a string: numbers and booleans are formatted, the
// first element of a list is used, and absent, null or objects give "".
func (p params) str(key string) string {
	return scalarString(p[key])
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		if len(x) > 0 {
			return scalarString(x[0])
		}
	}
	return ""
}

// boolean coerces key: true, "true", "1", 1, "yes", "on" are true; false,
// "false", "0", 0, "no", "off", "" are false. ok is false when absent or
// not a boolean.
func (p params) boolean(key string) (value, ok bool) {
	switch x := p[key].(type) {
	case bool:
		return x, true
	case string, json.Number, []any:
		switch strings.ToLower(strings.TrimSpace(scalarString(x))) {
		case "true", "1", "yes", "on":
			return true, true
		case "false", "0", "no", "off", "":
			return false, true
		}
	}
	return false, false
}

// isTrue reports whether key coerces to true.
func (p params) isTrue(key string) bool {
	v, _ := p.boolean(key)
	return v
}

// integer coerces key to an int64: "7776000", 7776000 and 7776000.0 all
// work. ok is false when absent, null or an empty string; err is set for anything else that
// is not a whole number.
func (p params) integer(key string) (n int64, ok bool, err error) {
	v, found := p[key]
	if !found || v == nil {
		return 0, false, nil
	}
	if _, isBool := v.(bool); isBool {
		return 0, false, errors.New("not a number")
	}
	s := strings.TrimSpace(scalarString(v))
	if s == "" {
		if _, isStr := v.(string); isStr {
			return 0, false, nil // an empty form field is an absent one
		}
		return 0, false, errors.New("not a number")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 {
		return 0, false, errors.New("not a whole number")
	}
	return int64(f), true, nil
}

// object returns key as a map, or nil.
func (p params) object(key string) map[string]any {
	m, _ := p[key].(map[string]any)
	return m
}

// list returns key as a list of strings: a list's scalar elements, a
// map's values in key order (a[0]=x&a[1]=y), or a single scalar.
func (p params) list(key string) []string {
	switch x := p[key].(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s := scalarString(e); s != "" {
				out = append(out, s)
			}
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]string, 0, len(x))
		for _, k := range keys {
			if s := scalarString(x[k]); s != "" {
				out = append(out, s)
			}
		}
		return out
	default:
		if s := scalarString(x); s != "" {
			return []string{s}
		}
		return nil
	}
}
