package api

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wick-cloud/wick/internal/store"
)

// The product device list (GET /v1/products/{p}/devices) pages through a
// product of any size without counting and sorting it per page. The store
// keeps per product an order version (store.ProductDeviceLists, migration
// 0014) that moves only when a device joins or leaves the product or
// changes a field the list sorts or filters on. The API keeps, per product,
// the sort and filter keys of all its devices read at one version, and each
// sort order once it was asked for. A page is then: one read of the
// version, a slice of the cached order (or one pass of the filters over
// it), one read of the page's row versions, and the devices' JSON from the
// device list cache (device_list.go), rereading only devices whose row
// version moved. Presence changes (online, offline, last heard) do not
// move the order version, so an idle fleet's order stays cached while the
// devices' own JSON stays exact.

// defaultProductListKeys bounds the device keys kept for all products
// (about 100 bytes each, plus 4 bytes per device and sort order asked for).
const defaultProductListKeys = 1 << 20

// orderKey names one sort order of a product's devices.
type orderKey struct {
	sort      store.DeviceSort
	ascending bool
}

// productOrder is a product's device keys at one order version, with the
// sort orders built so far (indexes into keys).
type productOrder struct {
	state store.ProductDeviceList
	keys  []store.ProductDeviceKey

	mu     sync.Mutex
	orders map[orderKey][]int32 // guarded by mu
}

// order returns the indexes of keys in the order of f.Sort and
// f.Ascending, sorting them the first time.
func (o *productOrder) order(k orderKey) []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if idx, ok := o.orders[k]; ok {
		return idx
	}
	idx := make([]int32, len(o.keys))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		return store.CompareProductDevices(&o.keys[a], &o.keys[b], k.sort, k.ascending)
	})
	if o.orders == nil {
		o.orders = make(map[orderKey][]int32)
	}
	o.orders[k] = idx
	return idx
}

// productListCache holds the products' device orders.
type productListCache struct {
	maxKeys int

	mu     sync.Mutex
	m      map[int64]*productOrder // guarded by mu
	keys   int                     // keys held; guarded by mu
	builds map[int64]*sync.Mutex   // one build per product at a time; guarded by mu
}

// newProductListCache returns a cache of at most maxKeys device keys.
func newProductListCache(maxKeys int) *productListCache {
	if maxKeys <= 0 {
		maxKeys = defaultProductListKeys
	}
	return &productListCache{maxKeys: maxKeys, m: make(map[int64]*productOrder), builds: make(map[int64]*sync.Mutex)}
}

// get returns the product's order at version v, or nil.
func (c *productListCache) get(productID, v int64) *productOrder {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.m[productID]; o != nil && o.state.Version == v {
		return o
	}
	return nil
}

// buildLock returns the lock that serialises the builds of a product.
func (c *productListCache) buildLock(productID int64) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.builds[productID]
	if l == nil {
		l = new(sync.Mutex)
		c.builds[productID] = l
	}
	return l
}

// put keeps o as its product's order unless a newer one is held, evicting
// other products past the bound. A product larger than the bound is not
// kept.
func (c *productListCache) put(productID int64, o *productOrder) {
	if len(o.keys) > c.maxKeys {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[productID]; old != nil {
		if old.state.Version > o.state.Version {
			return
		}
		c.keys -= len(old.keys)
	}
	c.m[productID] = o
	c.keys += len(o.keys)
	for id, old := range c.m {
		if c.keys <= c.maxKeys {
			break
		}
		if id != productID {
			delete(c.m, id)
			c.keys -= len(old.keys)
		}
	}
}

// productOrderAt returns the product's device order at its current
// version, reading the keys from the store when the cache lacks them.
func (s *server) productOrderAt(rq *request, ls store.ProductDeviceLists, productID int64) (*productOrder, error) {
	state, err := ls.ProductDeviceListState(rq.ctx, productID)
	if err != nil {
		return nil, err
	}
	if o := s.prodList.get(productID, state.Version); o != nil {
		return o, nil
	}
	l := s.prodList.buildLock(productID)
	l.Lock()
	defer l.Unlock()
	if o := s.prodList.get(productID, state.Version); o != nil {
		return o, nil // built by the request this one waited for
	}
	st, keys, err := ls.ProductDeviceKeys(rq.ctx, productID)
	if err != nil {
		return nil, err
	}
	o := &productOrder{state: st, keys: keys}
	s.prodList.put(productID, o)
	return o, nil
}

// listCachedProductDevices answers GET /v1/products/{p}/devices from the
// product's cached order and the device list cache; ok is false when the
// store keeps no product list state (the caller lists through
// DevicesByProduct).
func (s *server) listCachedProductDevices(rq *request, f store.DeviceFilter) (ok bool, err error) {
	ls, isLists := s.store.(store.ProductDeviceLists)
	dl, isDevLists := s.store.(store.DeviceLists)
	if !isLists || !isDevLists || s.prodList == nil || s.devList == nil {
		return false, nil
	}
	pid := rq.product.ID
	o, err := s.productOrderAt(rq, ls, pid)
	if err != nil {
		return true, err
	}
	idx := o.order(orderKey{f.Sort, f.Ascending})
	size := f.Page.Size
	from := (max(f.Page.Number, 1) - 1) * size
	var (
		total int
		ids   []string
	)
	if f.IDContains == "" && f.NameContains == "" && f.Quarantined == nil {
		total = len(idx)
		for _, i := range idx[min(from, total):min(from+size, total)] {
			ids = append(ids, o.keys[i].ID)
		}
	} else {
		m := f
		m.IDContains, m.NameContains = strings.ToLower(f.IDContains), strings.ToLower(f.NameContains)
		for _, i := range idx {
			k := &o.keys[i]
			if !m.Matches(k) {
				continue
			}
			if total >= from && total < from+size {
				ids = append(ids, k.ID)
			}
			total++
		}
	}
	devices, err := s.renderedProductDevices(rq, ls, dl, pid, ids)
	if err != nil {
		return true, err
	}
	return true, s.writeProductDevicePage(rq, devices, f.Page, total)
}

// renderedProductDevices returns the renderings of the devices of ids, in
// that order, leaving out those no longer in the product.
func (s *server) renderedProductDevices(rq *request, ls store.ProductDeviceLists, dl store.DeviceLists, pid int64, ids []string) ([]*renderedDevice, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vs, err := ls.ProductDeviceVersions(rq.ctx, pid, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]int64, len(vs))
	for _, v := range vs {
		byID[v.ID] = v.Version
	}
	list := make([]store.DeviceVersion, 0, len(ids))
	for _, id := range ids {
		if v, ok := byID[id]; ok {
			list = append(list, store.DeviceVersion{ID: id, Version: v})
		}
	}
	rendered := make([]*renderedDevice, len(list))
	if miss := s.devList.lookup(list, rendered); len(miss) > 0 {
		devs, err := dl.DevicesByIDs(rq.ctx, miss)
		if err != nil {
			return nil, err
		}
		fresh := make(map[string]*renderedDevice, len(devs))
		mids := make([]string, 0, len(devs))
		rs := make([]*renderedDevice, 0, len(devs))
		for i := range devs {
			d := &devs[i]
			r, err := renderDevice(&d.Device, d.Version)
			if err != nil {
				return nil, err
			}
			mids = append(mids, d.ID)
			rs = append(rs, r)
			if d.ProductID == pid {
				fresh[d.ID] = r
			}
		}
		s.devList.put(mids, rs)
		for i, v := range list {
			if rendered[i] == nil {
				rendered[i] = fresh[v.ID] // nil: left the product meanwhile
			}
		}
	}
	return slices.DeleteFunc(rendered, func(r *renderedDevice) bool { return r == nil }), nil
}

// writeProductDevicePage writes {"customers", "devices", "meta"} as
// encoding a map of them would (keys sorted), with the customers who own
// devices of the page.
func (s *server) writeProductDevicePage(rq *request, devices []*renderedDevice, page store.Page, total int) error {
	owners := callerOwners(rq)
	var customers []byte
	seen := map[string]bool{}
	b := make([]byte, 0, 256+len(devices)*700)
	b = append(b, `{"customers":[`...)
	dev := make([]byte, 0, len(devices)*700)
	dev = append(dev, `"devices":[`...)
	for i, r := range devices {
		name, err := s.deviceOwner(rq, &store.Device{OwnerID: r.ownerID, CustomerID: r.customerID}, owners)
		if err != nil {
			return err
		}
		if i > 0 {
			dev = append(dev, ',')
		}
		dev = append(dev, r.pre...)
		if name == "" {
			dev = append(dev, "null"...)
		} else {
			nj, err := json.Marshal(name)
			if err != nil {
				return err
			}
			dev = append(dev, nj...)
		}
		dev = append(dev, r.post...)
		if r.customerID != "" && name != "" && !seen[r.customerID] {
			seen[r.customerID] = true
			cj, err := json.Marshal(productCustomerJSON{ID: r.customerID, Username: name})
			if err != nil {
				return err
			}
			if len(customers) > 0 {
				customers = append(customers, ',')
			}
			customers = append(customers, cj...)
		}
	}
	b = append(b, customers...)
	b = append(b, "],"...)
	b = append(b, dev...)
	b = append(b, `],"meta":{"page":`...)
	b = strconv.AppendInt(b, int64(page.Number), 10)
	b = append(b, `,"per_page":`...)
	b = strconv.AppendInt(b, int64(page.Size), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"total_pages":`...)
	b = strconv.AppendInt(b, int64((total+page.Size-1)/page.Size), 10)
	b = append(b, "}}\n"...)
	writeListBody(rq.w, b)
	return nil
}
