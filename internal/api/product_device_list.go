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
	// slugs maps the slugs of products in m, as their last granted page
	// read them, to their IDs: the product a page by slug reads with
	// its team check (pageFromRead), which tells whether it guessed
	// right. Guarded by mu.
	slugs map[string]int64
}

// newProductListCache returns a cache of at most maxKeys device keys.
func newProductListCache(maxKeys int) *productListCache {
	if maxKeys <= 0 {
		maxKeys = defaultProductListKeys
	}
	return &productListCache{maxKeys: maxKeys, m: make(map[int64]*productOrder),
		sizes: make(map[int64]int), builds: make(map[int64]*sync.Mutex), slugs: make(map[string]int64)}
}

// slugID returns the ID of the cached product last seen with that slug.
func (c *productListCache) slugID(slug string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.slugs[slug]
	return id, ok
}

// noteSlug records a cached product's slug, as read with its team check.
func (c *productListCache) noteSlug(slug string, productID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[productID] != nil && c.slugs[slug] != productID {
		for s, id := range c.slugs {
			if id == productID { // renamed
				delete(c.slugs, s)
			}
		}
		c.slugs[slug] = productID
	}
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
	for s, id := range c.slugs {
		if c.m[id] == nil {
			delete(c.slugs, s)
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
	return s.readProductOrder(rq, ls, productID)
}

// readProductOrder reads the product's order whole, unless a request it
// waited for read one at the current version meanwhile.
func (s *server) readProductOrder(rq *request, ls store.ProductDeviceLists, productID int64) (*productOrder, error) {
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

// pageMargin is how many devices on either side of a page a request
// with a cached order asks the store about with the page
// (ReadProductDevicePage): a page after up to that many changes finds its
// devices among them. Each costs PostgreSQL a primary-key lookup per
// page: with 16 a middle page of 25 read 57 row versions, and gained
// little over the separate statements.
const pageMargin = 4

// listCachedProductDevices answers GET /v1/products/{p}/devices from the
// product's cached order and the device list cache; ok is false when the
// store keeps no product list state (the caller lists through
// DevicesByProduct).
//
// With the order cached and a store that has ProductDevicePages, the page
// is one round trip to PostgreSQL (pageFromRead), a user token's team
// check included when it was deferred (deferTeam); else it is the team
// check, the changes (productOrderAt), then the page's row versions,
// then the rows of the devices whose rendering is not current. It ends a
// deferred team check unless ok is false.
func (s *server) listCachedProductDevices(rq *request, f store.DeviceFilter) (ok bool, err error) {
	ls, isLists := s.store.(store.ProductDeviceLists)
	dl, isDevLists := s.store.(store.DeviceLists)
	if !isLists || !isDevLists || s.prodList == nil || s.devList == nil {
		return false, nil
	}
	k := orderKey{f.Sort, f.Ascending}
	size := f.Page.Size
	from := (max(f.Page.Number, 1) - 1) * size
	var (
		ids    []string
		total  int
		known  map[string]int64 // row versions read with the page; nil: read them
		paged  bool
		owners = callerOwners(rq) // with the owners' names read with the page
	)
	if pr, ok := s.store.(store.ProductDevicePages); ok {
		if pid, ok := s.pageProductID(rq); ok {
			if o := s.prodList.get(pid); o != nil {
				if ids, total, known, paged, err = s.pageFromRead(rq, pr, ls, o, pid, k, &f, from, size, owners); err != nil {
					return true, err
				}
			}
		}
	}
	if err := s.resolveTeam(rq); err != nil {
		return true, err
	}
	pid := rq.product.ID
	if !paged {
		o, err := s.productOrderAt(rq, ls, pid)
		if err != nil {
			return true, err
		}
		ids, total = o.page(k, &f, from, size)
		if !isDigits(rq.r.PathValue("p")) {
			s.prodList.noteSlug(rq.product.Slug, pid) // the next page by slug reads its team check with it
		}
	}
	devices, err := s.renderedProductDevices(rq, ls, dl, pid, ids, known)
	if err != nil {
		return true, err
	}
	return true, s.writeProductDevicePage(rq, devices, owners, f.Page, total)
}

// pageProductID returns the ID of the product whose page a request
// reads: rq.product's, or while its team check is deferred the one {p}
// names (a slug as last seen, slugID); ok is false when it is not known.
func (s *server) pageProductID(rq *request) (int64, bool) {
	if !rq.teamPending {
		return rq.product.ID, true
	}
	ref, ok := productRef(rq)
	switch {
	case !ok:
		return 0, false
	case ref.Slug != "":
		return s.prodList.slugID(ref.Slug)
	}
	return ref.ID, true
}

// pageFromRead finds the page in o, the cached order of product pid, with
// one ReadProductDevicePage: the changes since o's version, the row
// versions of the page's devices and of pageMargin on either side as o
// has them, and the rows of the devices that changed right after o's
// version. While the team check is deferred (deferTeam) the same read is
// ReadProductDevicePageFor, which checks it too: a refusal is returned as
// authorizeTeamAccess returns it, before anything of the page is looked
// at, and a product that is not pid (a slug that moved) returns ok
// false with access granted. It applies the changes to o (or reads the
// order whole when the log does not reach back) and returns the page,
// its total, the row versions read (nil when the order moved on past the
// read meanwhile), and ok false when another request moved the order
// meanwhile (the caller reads the changes again). The names of the
// devices' owners read with the page go into owners, under deviceOwner's
// keys, where the caller's own name is not already.
func (s *server) pageFromRead(rq *request, pr store.ProductDevicePages, ls store.ProductDeviceLists, o *productOrder,
	pid int64, k orderKey, f *store.DeviceFilter, from, size int, owners map[string]string) (ids []string, total int, known map[string]int64, ok bool, err error) {
	lo := max(from-pageMargin, 0)
	win, wtotal, v := o.pageAt(k, f, lo, from+size+pageMargin-lo)
	var r store.ProductDevicePageRead
	if rq.teamPending {
		ref, _ := productRef(rq) // pageProductID found it
		var a *store.ProductAccess
		a, r, err = s.store.(store.ProductDevicePageAccess).ReadProductDevicePageFor(rq.ctx, ref, rq.principal.UserID, pid, v, win)
		if err := grantTeam(rq, a, err); err != nil {
			return nil, 0, nil, false, err
		}
		if ref.Slug != "" {
			s.prodList.noteSlug(a.Product.Slug, a.Product.ID)
		}
		if a.Product.ID != pid {
			return nil, 0, nil, false, nil // granted for another product than the one read
		}
	} else if r, err = pr.ReadProductDevicePage(rq.ctx, pid, v, win); err != nil {
		return nil, 0, nil, false, err
	}
	if err := s.keepRendered(r.Rows); err != nil {
		return nil, 0, nil, false, err
	}
	for _, ow := range r.Owners {
		key := "c:" + ow.CustomerID
		if ow.OwnerID != "" {
			key = "u:" + ow.OwnerID
		}
		if _, ok := owners[key]; !ok {
			owners[key] = ow.Name
		}
	}
	known = make(map[string]int64, len(r.Versions)+len(r.Rows))
	for _, dv := range r.Versions {
		known[dv.ID] = dv.Version
	}
	for i := range r.Rows { // read after the versions: as new or newer
		known[r.Rows[i].ID] = r.Rows[i].Version
	}
	if r.State.Version <= v {
		return win[min(from-lo, len(win)):min(from+size-lo, len(win))], wtotal, known, true, nil
	}
	cur, applied := s.applyProductChanges(pid, o, v, r.State, r.Changed, r.Gone, r.Complete)
	if !applied {
		if cur == nil {
			return nil, 0, nil, false, nil
		}
		if cur, err = s.readProductOrder(rq, ls, pid); err != nil {
			return nil, 0, nil, false, err
		}
	}
	ids, total, at := cur.pageAt(k, f, from, size)
	if at != r.State.Version {
		known = nil
	}
	return ids, total, known, true, nil
}

// keepRendered renders devices read with their row versions into the
// device list cache.
func (s *server) keepRendered(devs []store.VersionedDevice) error {
	if len(devs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(devs))
	rs := make([]*renderedDevice, 0, len(devs))
	for i := range devs {
		d := &devs[i]
		r, err := renderDevice(&d.Device, d.Version)
		if err != nil {
			return err
		}
		ids = append(ids, d.ID)
		rs = append(rs, r)
	}
	s.devList.put(ids, rs)
	return nil
}

// renderedProductDevices returns the renderings of the devices of ids, in
// that order, leaving out those no longer in the product. known holds
// row versions read with the page (pageFromRead); the versions of the
// others are read.
func (s *server) renderedProductDevices(rq *request, ls store.ProductDeviceLists, dl store.DeviceLists, pid int64,
	ids []string, known map[string]int64) ([]*renderedDevice, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var read []string
	for _, id := range ids {
		if _, ok := known[id]; !ok {
			read = append(read, id)
		}
	}
	if len(read) > 0 {
		vs, err := ls.ProductDeviceVersions(rq.ctx, pid, read)
		if err != nil {
			return nil, err
		}
		if known == nil {
			known = make(map[string]int64, len(vs))
		}
		for _, v := range vs {
			known[v.ID] = v.Version
		}
	}
	list := make([]store.DeviceVersion, 0, len(ids))
	for _, id := range ids {
		if v, ok := known[id]; ok {
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
// devices of the page; owners holds the names known (deviceOwner reads
// the others).
func (s *server) writeProductDevicePage(rq *request, devices []*renderedDevice, owners map[string]string, page store.Page, total int) error {
	// The owners' names first (the customers come before the devices),
	// then the body in one buffer of its size.
	var customers []byte
	seen := map[string]bool{}
	names := make([][]byte, len(devices)) // each owner's name as JSON
	null := []byte("null")
	size := 128
	for i, r := range devices {
		name, err := s.deviceOwner(rq, &store.Device{OwnerID: r.ownerID, CustomerID: r.customerID}, owners)
		if err != nil {
			return err
		}
		if name == "" {
			names[i] = null
		} else if names[i], err = json.Marshal(name); err != nil {
			return err
		}
		size += len(r.pre) + len(names[i]) + len(r.post) + 1
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
	b := make([]byte, 0, size+len(customers))
	b = append(b, `{"customers":[`...)
	b = append(b, customers...)
	b = append(b, `],"devices":[`...)
	for i, r := range devices {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r.pre...)
		b = append(b, names[i]...)
		b = append(b, r.post...)
	}
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
