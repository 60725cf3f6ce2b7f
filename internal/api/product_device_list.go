package api

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"

	"github.com/wick-cloud/wick/internal/store"
)

// The product device list (GET /v1/products/{p}/devices) pages through a
// product of any size without counting and sorting it per page. The store
// keeps per product an order version (store.ProductDeviceLists, migration
// 0014) that moves only when a device joins or leaves the product or
// changes a field the list sorts or filters on, and logs which device
// moved each version (migration 0018). The API keeps, per product, the
// sort and filter keys of all its devices at one version, each sort order
// once it was asked for, and the names and IDs in substring indexes
// (product_device_order.go). A page is then: one statement that reads the
// version and any changes since the cached one, a slice of the cached
// order (or one scan of the indexes and a walk of the order), one read of
// the page's row versions, and the devices' JSON from the device list
// cache (device_list.go), rereading only devices whose row version moved.
// Presence changes (online, offline, last heard) do not move the order
// version, so an idle fleet's order stays cached while the devices' own
// JSON stays exact.
//
// When the version moved, the request that sees it has, from that same
// statement (one snapshot: the state, the log, the keys), the keys of the
// devices that changed since the cached version, and applies them in
// place under the product's update lock. Every node of a cluster does
// this on its own from the shared log; the product's row lock numbers the
// changes in commit order, so a node never applies them out of order.
// Only a node more than the log's length (4,096 changes) behind, a new
// node, or a count that does not match reads the whole product again.

// defaultProductListKeys bounds the device keys kept for all products
// (about 150 bytes each, plus 4 bytes per device and sort order asked for).
const defaultProductListKeys = 1 << 20

// productListCache holds the products' device orders.
type productListCache struct {
	maxKeys int

	mu     sync.Mutex
	m      map[int64]*productOrder // guarded by mu
	sizes  map[int64]int           // devices of each order in m, as last counted; guarded by mu
	keys   int                     // the sum of sizes; guarded by mu
	builds map[int64]*sync.Mutex   // one update of a product at a time; guarded by mu
}

// newProductListCache returns a cache of at most maxKeys device keys.
func newProductListCache(maxKeys int) *productListCache {
	if maxKeys <= 0 {
		maxKeys = defaultProductListKeys
	}
	return &productListCache{maxKeys: maxKeys, m: make(map[int64]*productOrder),
		sizes: make(map[int64]int), builds: make(map[int64]*sync.Mutex)}
}

// get returns the product's order, at whatever version, or nil.
func (c *productListCache) get(productID int64) *productOrder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[productID]
}

// buildLock returns the lock that serialises the updates of a product.
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

// put keeps o as its product's order, or counts its new size when it is
// the one held, evicting other products past the bound. A product larger
// than the bound is not kept.
func (c *productListCache) put(productID int64, o *productOrder) {
	n := o.size()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys -= c.sizes[productID]
	delete(c.m, productID)
	delete(c.sizes, productID)
	if n > c.maxKeys {
		return
	}
	c.m[productID] = o
	c.sizes[productID] = n
	c.keys += n
	for id := range c.m {
		if c.keys <= c.maxKeys {
			break
		}
		if id != productID {
			c.keys -= c.sizes[id]
			delete(c.m, id)
			delete(c.sizes, id)
		}
	}
}

// productOrderAt returns the product's device order at its current
// version or later. With an order cached, one read of the store's change
// log since its version is also the read of the current version; changes
// are applied in place under the product's update lock. Without one, or
// when the log no longer reaches back, the order is read whole.
func (s *server) productOrderAt(rq *request, ls store.ProductDeviceLists, productID int64) (*productOrder, error) {
	for range 3 {
		o := s.prodList.get(productID)
		if o == nil {
			break
		}
		v := o.at()
		st, changed, gone, complete, err := ls.ProductDeviceChanges(rq.ctx, productID, v)
		if err != nil {
			return nil, err
		}
		if st.Version <= v {
			return o, nil
		}
		o, ok := s.applyProductChanges(productID, o, v, st, changed, gone, complete)
		if ok {
			return o, nil
		}
		if o != nil {
			break // the log does not reach back: read it whole
		}
		// Another request moved the order meanwhile, but not to st: read
		// the changes again from where it is now.
	}
	l := s.prodList.buildLock(productID)
	l.Lock()
	defer l.Unlock()
	st, keys, err := ls.ProductDeviceKeys(rq.ctx, productID)
	if err != nil {
		return nil, err
	}
	if o := s.prodList.get(productID); o != nil && o.at() >= st.Version {
		return o, nil // read by the request this one waited for
	}
	o := newProductOrder(st, keys)
	s.prodList.put(productID, o)
	return o, nil
}

// applyProductChanges brings o, the cached order read at version v, to
// state st under the product's update lock. It returns the order to use
// and true when one at st or later is cached; else nil when another
// request changed the cached order meanwhile (the caller reads the
// changes again), or o when the changes cannot be applied (the caller
// reads the order whole).
func (s *server) applyProductChanges(productID int64, o *productOrder, v int64, st store.ProductDeviceList,
	changed []store.ProductDeviceKey, gone []string, complete bool) (*productOrder, bool) {
	l := s.prodList.buildLock(productID)
	l.Lock()
	defer l.Unlock()
	cur := s.prodList.get(productID)
	if cur != nil && cur.at() >= st.Version {
		return cur, true
	}
	if cur != o || o.at() != v {
		return nil, false
	}
	if !complete || !o.apply(st, changed, gone) {
		return o, false
	}
	s.prodList.put(productID, o)
	return o, true
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
	size := f.Page.Size
	from := (max(f.Page.Number, 1) - 1) * size
	ids, total := o.page(orderKey{f.Sort, f.Ascending}, &f, from, size)
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
