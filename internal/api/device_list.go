package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/wick-cloud/wick/internal/store"
)

// The device list (GET /v1/devices) keeps each device's rendered JSON
// between requests, keyed by device ID and the store's row version
// (store.DeviceLists), which changes on every write to the device: a
// claim, a rename, notes, a describe, online and offline, last heard, a
// product move, from this node or another. A list reads only the IDs and
// versions of the caller's devices, reads in full just the devices whose
// version is not cached, and streams the array out of the cached bytes, so
// its cost grows with the bytes written rather than with decoding rows.
// A cached entry can never be served for a version it was not rendered
// from, so the list is as fresh as the store.

// defaultDeviceListEntries bounds the rendered devices kept in memory
// (about 0.6 KB each).
const defaultDeviceListEntries = 1 << 18

// ownerMarker is the owner field of a device rendered without owner; the
// cache cuts the rendering there, since the owner's name is resolved per
// request (a username may change without a write to the device).
var ownerMarker = []byte(`,"owner":null,`)

// renderedDevice is a device's JSON cut around its owner value:
// pre + owner + post.
type renderedDevice struct {
	version    int64
	ownerID    string
	customerID string
	pre, post  []byte
}

// deviceListCache holds rendered devices by ID, and assembled lists by
// caller ("u:"+user ID, "c:"+customer ID).
type deviceListCache struct {
	max          int
	maxListBytes int
	mu           sync.RWMutex
	m            map[string]*renderedDevice
	lists        map[string]*assembledList
	listBytes    int
}

// newDeviceListCache returns a cache of at most max devices.
func newDeviceListCache(max int) *deviceListCache {
	if max <= 0 {
		max = defaultDeviceListEntries
	}
	return &deviceListCache{
		max:          max,
		maxListBytes: defaultDeviceListBytes,
		m:            make(map[string]*renderedDevice),
		lists:        make(map[string]*assembledList),
	}
}

// lookup fills out[i] with the cached rendering of list[i] when its
// version matches, and returns the IDs of the others.
func (c *deviceListCache) lookup(list []store.DeviceVersion, out []*renderedDevice) []string {
	var miss []string
	c.mu.RLock()
	for i, v := range list {
		if r := c.m[v.ID]; r != nil && r.version == v.Version {
			out[i] = r
		} else {
			miss = append(miss, v.ID)
		}
	}
	c.mu.RUnlock()
	return miss
}

// get returns the cached rendering of device id at version v, or nil.
func (c *deviceListCache) get(id string, v int64) *renderedDevice {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if r := c.m[id]; r != nil && r.version == v {
		return r
	}
	return nil
}

// put stores rendered devices, evicting arbitrary entries past the bound.
func (c *deviceListCache) put(ids []string, rs []*renderedDevice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if old := c.m[id]; old != nil && old.version > rs[i].version {
			continue // a newer rendering landed meanwhile
		}
		c.m[id] = rs[i]
	}
	for id := range c.m {
		if len(c.m) <= c.max {
			break
		}
		delete(c.m, id)
	}
}

// len returns how many devices are cached.
func (c *deviceListCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// renderDevice renders d at version v for the cache.
func renderDevice(d *store.Device, v int64) (*renderedDevice, error) {
	b, err := json.Marshal(deviceView(d, ""))
	if err != nil {
		return nil, err
	}
	// id and name come first and are JSON strings, whose quotes inside are
	// escaped, so the first marker is the owner field.
	i := bytes.Index(b, ownerMarker)
	if i < 0 {
		return nil, fmt.Errorf("api: device %s: no owner field in its JSON", d.ID)
	}
	cut := i + len(`,"owner":`)
	return &renderedDevice{
		version:    v,
		ownerID:    d.OwnerID,
		customerID: d.CustomerID,
		pre:        b[:cut:cut],
		post:       b[cut+len("null"):],
	}, nil
}

// ownerValue is the JSON of a rendered device's owner field: the name as a
// string, or null for none.
func ownerValue(name string) ([]byte, error) {
	if name == "" {
		return []byte("null"), nil
	}
	return json.Marshal(name)
}

// defaultDeviceListBytes bounds the assembled lists kept in memory.
const defaultDeviceListBytes = 64 << 20

// assembledList is a whole response body of GET /v1/devices, valid while
// its caller's list keeps its stamp and the caller's name stays.
type assembledList struct {
	stamp store.DeviceListStamp
	owner string
	body  []byte
}

// getList returns the assembled list of key at stamp for that owner name.
func (c *deviceListCache) getList(key string, stamp store.DeviceListStamp, owner string) []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if l := c.lists[key]; l != nil && l.stamp == stamp && l.owner == owner {
		return l.body
	}
	return nil
}

// putList keeps an assembled list, evicting arbitrary ones past the
// byte bound.
func (c *deviceListCache) putList(key string, l *assembledList) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.lists[key]; old != nil {
		c.listBytes -= len(old.body)
	}
	c.lists[key] = l
	c.listBytes += len(l.body)
	for k, old := range c.lists {
		if c.listBytes <= c.maxListBytes {
			break
		}
		delete(c.lists, k)
		c.listBytes -= len(old.body)
	}
}

// listCachedDevices answers GET /v1/devices from the cache; ok is false
// when the store cannot list by version (the caller renders the devices
// itself). Where the store vouches for a list's stamp (SQLite), an
// unchanged list is one query and a copy of the previous answer.
func (s *server) listCachedDevices(rq *request) (ok bool, err error) {
	ls, isLists := s.store.(store.DeviceLists)
	if !isLists || s.devList == nil {
		return false, nil
	}
	p := rq.principal
	var (
		key      string
		stampOf  func() (store.DeviceListStamp, bool, error)
		stamps   store.DeviceListStamps
		hasStamp bool
	)
	stamps, hasStamp = s.store.(store.DeviceListStamps)
	switch p.Kind {
	case store.KindUser:
		key = "u:" + p.UserID
		if hasStamp {
			stampOf = func() (store.DeviceListStamp, bool, error) { return stamps.DeviceListStampByOwner(rq.ctx, p.UserID) }
		}
	case store.KindCustomer:
		key = "c:" + p.CustomerID
		if hasStamp {
			stampOf = func() (store.DeviceListStamp, bool, error) {
				return stamps.DeviceListStampByCustomer(rq.ctx, p.CustomerID)
			}
		}
	default:
		return true, errForbidden
	}
	var (
		stamp store.DeviceListStamp
		exact bool
	)
	if stampOf != nil {
		if stamp, exact, err = stampOf(); err != nil {
			return true, err
		}
		if exact {
			if body := s.devList.getList(key, stamp, p.Username); body != nil {
				writeListBody(rq.w, body)
				return true, nil
			}
		}
	}
	body, cacheable, err := s.assembleDeviceList(rq, ls)
	if err != nil {
		return true, err
	}
	if exact && cacheable {
		// Keep it only if nothing changed while it was assembled: stamps
		// never return to an earlier value, so an equal stamp means the
		// same list.
		if again, exact2, err := stampOf(); err == nil && exact2 && again == stamp {
			s.devList.putList(key, &assembledList{stamp: stamp, owner: p.Username, body: body})
		}
	}
	writeListBody(rq.w, body)
	return true, nil
}

// writeListBody writes a device list answer.
func writeListBody(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// assembleDeviceList builds the body of GET /v1/devices from the cached
// renderings, rereading the devices whose version moved. cacheable is
// false when some device shows an owner other than the caller.
func (s *server) assembleDeviceList(rq *request, ls store.DeviceLists) (body []byte, cacheable bool, err error) {
	p := rq.principal
	var list []store.DeviceVersion
	if p.Kind == store.KindUser {
		list, err = ls.DeviceVersionsByOwner(rq.ctx, p.UserID)
	} else {
		list, err = ls.DeviceVersionsByCustomer(rq.ctx, p.CustomerID)
	}
	if err != nil {
		return nil, false, err
	}
	rendered := make([]*renderedDevice, len(list))
	if miss := s.devList.lookup(list, rendered); len(miss) > 0 {
		devs, err := ls.DevicesByIDs(rq.ctx, miss)
		if err != nil {
			return nil, false, err
		}
		byID := make(map[string]*renderedDevice, len(devs))
		ids := make([]string, 0, len(devs))
		rs := make([]*renderedDevice, 0, len(devs))
		for i := range devs {
			d := &devs[i]
			// A device that changed hands since the version list is left
			// out, as a list read a moment later would.
			if (p.Kind == store.KindUser && d.OwnerID != p.UserID) ||
				(p.Kind == store.KindCustomer && d.CustomerID != p.CustomerID) {
				continue
			}
			r, err := renderDevice(&d.Device, d.Version)
			if err != nil {
				return nil, false, err
			}
			byID[d.ID] = r
			ids = append(ids, d.ID)
			rs = append(rs, r)
		}
		s.devList.put(ids, rs)
		for i, v := range list {
			if rendered[i] == nil {
				rendered[i] = byID[v.ID] // nil: deleted or moved meanwhile
			}
		}
	}

	owners := callerOwners(rq)
	ownerJSON := map[string][]byte{}
	size := 3 // "[", "]", "\n"
	parts := make([][]byte, len(rendered))
	cacheable = true
	for i, r := range rendered {
		if r == nil {
			continue
		}
		if (p.Kind == store.KindUser && r.ownerID != p.UserID) ||
			(p.Kind == store.KindCustomer && (r.ownerID != "" || r.customerID != p.CustomerID)) {
			cacheable = false
		}
		name, err := s.deviceOwner(rq, &store.Device{OwnerID: r.ownerID, CustomerID: r.customerID}, owners)
		if err != nil {
			return nil, false, err
		}
		oj, found := ownerJSON[name]
		if !found {
			if oj, err = ownerValue(name); err != nil {
				return nil, false, err
			}
			ownerJSON[name] = oj
		}
		parts[i] = oj
		size += len(r.pre) + len(oj) + len(r.post) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, '[')
	first := true
	for i, r := range rendered {
		if r == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, r.pre...)
		b = append(b, parts[i]...)
		b = append(b, r.post...)
	}
	b = append(b, "]\n"...)
	return b, cacheable, nil
}
