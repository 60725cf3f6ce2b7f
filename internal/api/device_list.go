package api

import (
	"bufio"
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

// deviceListCache holds rendered devices by ID.
type deviceListCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]*renderedDevice
}

// newDeviceListCache returns a cache of at most max devices.
func newDeviceListCache(max int) *deviceListCache {
	if max <= 0 {
		max = defaultDeviceListEntries
	}
	return &deviceListCache{max: max, m: make(map[string]*renderedDevice)}
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

// listCachedDevices answers GET /v1/devices from the cache; ok is false
// when the store cannot list by version (the caller renders the devices
// itself).
func (s *server) listCachedDevices(rq *request) (ok bool, err error) {
	ls, isLists := s.store.(store.DeviceLists)
	if !isLists || s.devList == nil {
		return false, nil
	}
	p := rq.principal
	var list []store.DeviceVersion
	switch p.Kind {
	case store.KindUser:
		list, err = ls.DeviceVersionsByOwner(rq.ctx, p.UserID)
	case store.KindCustomer:
		list, err = ls.DeviceVersionsByCustomer(rq.ctx, p.CustomerID)
	default:
		return true, errForbidden
	}
	if err != nil {
		return true, err
	}
	rendered := make([]*renderedDevice, len(list))
	if miss := s.devList.lookup(list, rendered); len(miss) > 0 {
		devs, err := ls.DevicesByIDs(rq.ctx, miss)
		if err != nil {
			return true, err
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
				return true, err
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
	for i, r := range rendered {
		if r == nil {
			continue
		}
		name, err := s.deviceOwner(rq, &store.Device{OwnerID: r.ownerID, CustomerID: r.customerID}, owners)
		if err != nil {
			return true, err
		}
		oj, found := ownerJSON[name]
		if !found {
			if name == "" {
				oj = []byte("null")
			} else if oj, err = json.Marshal(name); err != nil {
				return true, err
			}
			ownerJSON[name] = oj
		}
		parts[i] = oj
		size += len(r.pre) + len(oj) + len(r.post) + 1
	}

	h := rq.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(size-boolInt(size > 3)))
	rq.w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(rq.w, 64<<10)
	bw.WriteByte('[')
	first := true
	for i, r := range rendered {
		if r == nil {
			continue
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.Write(r.pre)
		bw.Write(parts[i])
		bw.Write(r.post)
	}
	bw.WriteString("]\n")
	_ = bw.Flush()
	return true, nil
}

// boolInt is 1 for true, 0 for false.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
