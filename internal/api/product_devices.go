package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Product device failures.
var (
	errImportNothing = errorf(http.StatusBadRequest, "id or file is required: a device ID, or a file of one identifier per line")
	errImportTooMany = errorf(http.StatusBadRequest, "At most 10000 identifiers per request")
	errSortAttr      = errorf(http.StatusBadRequest, "sortAttr must be deviceId, firmwareVersion or lastConnection")
	errSortDir       = errorf(http.StatusBadRequest, "sortDir must be asc or desc")
	errQuarantined   = errorf(http.StatusBadRequest, "quarantined must be true or false")
)

// maxImportIDs bounds the identifiers of one POST /v1/products/{p}/devices.
const maxImportIDs = 10000

// productCustomerJSON is an entry of the "customers" list of a product
// device list.
type productCustomerJSON struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

// handleListProductDevices is GET /v1/products/{p}/devices
// (docs/particle-api.md#device-endpoints): one page of the product's devices,
// with the customers who own devices on that page. Filters: deviceId and
// deviceName (partial, any case), quarantined; sortAttr
// deviceId|firmwareVersion|lastConnection (default lastConnection), sortDir
// asc|desc (default desc); page and per_page (or perPage). Wick keeps no serial
// numbers and no groups, so a serialNumber or groups filter matches nothing.
//
// A user token's team check may be deferred to the page's read
// (deferTeam): a bad parameter is answered only after it.
func (s *server) handleListProductDevices(rq *request) error {
	f, err := productDeviceFilter(rq.params)
	if err != nil {
		if aerr := s.resolveTeam(rq); aerr != nil {
			return aerr
		}
		return err
	}
	p := rq.params
	var (
		list  []store.Device
		total int
	)
	if strings.TrimSpace(p.str("serialNumber")) == "" && len(groupsParam(p)) == 0 {
		if ok, err := s.listCachedProductDevices(rq, f); ok {
			return err // product_device_list.go
		}
		if err := s.resolveTeam(rq); err != nil {
			return err
		}
		var err error
		if list, total, err = s.store.DevicesByProduct(rq.ctx, rq.product.ID, f); err != nil {
			return err
		}
	} else if err := s.resolveTeam(rq); err != nil {
		return err
	}
	return s.writeProductDevices(rq, list, f.Page, total)
}

// productDeviceFilter reads the filters, sort and page of GET
// /v1/products/{p}/devices.
func productDeviceFilter(p params) (store.DeviceFilter, error) {
	f := store.DeviceFilter{
		IDContains:   strings.TrimSpace(p.str("deviceId")),
		NameContains: strings.TrimSpace(p.str("deviceName")),
		Page:         pageParams(p),
	}
	switch strings.TrimSpace(p.str("sortAttr")) {
	case "", "lastConnection":
		f.Sort = store.SortByLastConnection
	case "deviceId":
		f.Sort = store.SortByID
	case "firmwareVersion":
		f.Sort = store.SortByFirmwareVersion
	default:
		return f, errSortAttr
	}
	switch strings.ToLower(strings.TrimSpace(p.str("sortDir"))) {
	case "", "desc":
	case "asc":
		f.Ascending = true
	default:
		return f, errSortDir
	}
	if q := p.str("quarantined"); q != "" {
		v, ok := p.boolean("quarantined")
		if !ok {
			return f, errQuarantined
		}
		f.Quarantined = &v
	}
	return f, nil
}

// writeProductDevices writes a page of devices listed by the store.
func (s *server) writeProductDevices(rq *request, list []store.Device, page store.Page, total int) error {
	owners := callerOwners(rq)
	devices := make([]deviceJSON, 0, len(list))
	customers := []productCustomerJSON{}
	seen := map[string]bool{}
	for i := range list {
		d := &list[i]
		owner, err := s.deviceOwner(rq, d, owners)
		if err != nil {
			return err
		}
		devices = append(devices, deviceView(d, owner))
		if d.CustomerID != "" && owner != "" && !seen[d.CustomerID] {
			seen[d.CustomerID] = true
			customers = append(customers, productCustomerJSON{ID: d.CustomerID, Username: owner})
		}
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{
		"devices":   devices,
		"customers": customers,
		"meta": map[string]int{
			"total_pages": (total + page.Size - 1) / page.Size,
			"page":        page.Number, "per_page": page.Size, "total": total,
		},
	})
}

// groupsParam reads groups as a list or a comma-separated string.
func groupsParam(p params) []string {
	var out []string
	for _, g := range p.list("groups") {
		for _, part := range strings.Split(g, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// handleGetProductDevice is GET /v1/products/{p}/devices/{id}: the device
// object with its product fields.
func (s *server) handleGetProductDevice(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	owner, err := s.deviceOwner(rq, d, callerOwners(rq))
	if err != nil {
		return err
	}
	v, err := s.withFirmware(rq.ctx, deviceView(d, owner), d)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, v)
}

// importResult is the answer of POST /v1/products/{p}/devices
// (docs/particle-api.md#adding-devices-to-a-product).
type importResult struct {
	Updated            int      `json:"updated"`
	UpdatedDeviceIDs   []string `json:"updatedDeviceIds"`
	ExistingDeviceIDs  []string `json:"existingDeviceIds"`
	NonmemberDeviceIDs []string `json:"nonmemberDeviceIds"`
	InvalidDeviceIDs   []string `json:"invalidDeviceIds"`
	ProtectedDeviceIDs []string `json:"protectedDeviceIds"`
}

// importIdentifiers reads the identifiers of an import: the multipart part
// "file" (or a form field of that name), else id.
func importIdentifiers(rq *request) ([]string, error) {
	var ids []string
	switch {
	case rq.form != nil && len(rq.form.File["file"]) > 0:
		for _, fh := range rq.form.File["file"] {
			f, err := fh.Open()
			if err != nil {
				return nil, fmt.Errorf("api: open uploaded file: %w", err)
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("api: read uploaded file: %w", err)
			}
			ids = appendIdentifiers(ids, string(b))
		}
	case rq.params.str("file") != "":
		ids = appendIdentifiers(ids, rq.params.str("file"))
	default:
		for _, id := range rq.params.list("id") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, errImportNothing
	}
	if len(ids) > maxImportIDs {
		return nil, errImportTooMany
	}
	return ids, nil
}

// appendIdentifiers appends the identifiers of a file: one per line, a
// CSV-like line counting by its first field; blank lines are skipped.
func appendIdentifiers(ids []string, text string) []string {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexAny(line, ",;\t "); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			ids = append(ids, line)
		}
	}
	return ids
}

// handleImportProductDevices is POST /v1/products/{p}/devices
// (docs/particle-api.md#adding-devices-to-a-product): add devices to the
// product by ID, from JSON/form "id" or a multipart "file" of one identifier
// per line. Each identifier lands in one list:
//
//   - updatedDeviceIds: added (a device Wick does not know yet is created
//     without a key, to be provisioned later), or approved out of
//     quarantine or denial.
//   - existingDeviceIds: already in the product.
//   - nonmemberDeviceIds: owned by a user who is not on the team.
//   - invalidDeviceIds: not a device ID (Wick keeps no serial numbers,
//     IMEIs or ICCIDs), in another product or owned by a customer, or a
//     device that reported another platform than the product's.
//   - protectedDeviceIds: always empty (Wick has no device protection).
//
// The answer is 200 even when every identifier was refused (particle-cli
// reports that itself).
func (s *server) handleImportProductDevices(rq *request) error {
	idents, err := importIdentifiers(rq)
	if err != nil {
		return err
	}
	prod := rq.product
	res := importResult{UpdatedDeviceIDs: []string{}, ExistingDeviceIDs: []string{}, NonmemberDeviceIDs: []string{},
		InvalidDeviceIDs: []string{}, ProtectedDeviceIDs: []string{}}
	seen := map[string]bool{}
	members := map[string]bool{} // owner user ID → on the team
	for _, ident := range idents {
		parsed, err := protocol.ParseDeviceID(ident)
		if err != nil {
			res.InvalidDeviceIDs = append(res.InvalidDeviceIDs, ident)
			continue
		}
		id := parsed.String()
		if seen[id] {
			continue
		}
		seen[id] = true
		d, err := s.store.DeviceByID(rq.ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			if _, err := s.store.ProvisionDevice(rq.ctx, id, "", nil, prod.ID); err != nil {
				return fmt.Errorf("api: add device to product: %w", err)
			}
			res.UpdatedDeviceIDs = append(res.UpdatedDeviceIDs, id)
			continue
		}
		if err != nil {
			return err
		}
		list, err := s.importOne(rq, d, members)
		if err != nil {
			return err
		}
		switch list {
		case importUpdated:
			res.UpdatedDeviceIDs = append(res.UpdatedDeviceIDs, id)
			s.reloadDevice(rq, id)
		case importExisting:
			res.ExistingDeviceIDs = append(res.ExistingDeviceIDs, id)
		case importNonmember:
			res.NonmemberDeviceIDs = append(res.NonmemberDeviceIDs, id)
		default:
			res.InvalidDeviceIDs = append(res.InvalidDeviceIDs, id)
		}
	}
	res.Updated = len(res.UpdatedDeviceIDs)
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "devices imported into product", slog.Int64("product", prod.ID),
		slog.Int("updated", res.Updated), slog.Int("existing", len(res.ExistingDeviceIDs)),
		slog.Int("nonmember", len(res.NonmemberDeviceIDs)), slog.Int("invalid", len(res.InvalidDeviceIDs)))
	return writeJSON(rq.w, http.StatusOK, res)
}

// importList names the list of an import answer a device lands in.
type importList uint8

const (
	importInvalid importList = iota
	importUpdated
	importExisting
	importNonmember
)

// importOne adds one known device to the route's product, or says why not.
// members caches the team membership of owners.
func (s *server) importOne(rq *request, d *store.Device, members map[string]bool) (importList, error) {
	prod := rq.product
	if d.ProductID == prod.ID {
		if !d.Quarantined && !d.Denied {
			return importExisting, nil
		}
		d.Quarantined, d.Denied, d.UpdatedAt = false, false, rq.now
		if err := s.store.UpdateDevice(rq.ctx, d); err != nil {
			return 0, fmt.Errorf("api: approve device: %w", err)
		}
		return importUpdated, nil
	}
	if d.ProductID != 0 || d.CustomerID != "" {
		return importInvalid, nil
	}
	if d.LastHandshakeAt != nil && d.PlatformID != prod.PlatformID {
		return importInvalid, nil
	}
	if d.OwnerID != "" {
		member, known := members[d.OwnerID]
		if !known {
			u, err := s.store.UserByID(rq.ctx, d.OwnerID)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return 0, err
			default:
				_, err = s.store.TeamMember(rq.ctx, prod.ID, u.Username)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return 0, err
				}
				member = err == nil
			}
			members[d.OwnerID] = member
		}
		if !member {
			return importNonmember, nil
		}
	}
	d.ProductID, d.Quarantined, d.Denied, d.UpdatedAt = prod.ID, false, false, rq.now
	if err := s.store.UpdateDevice(rq.ctx, d); err != nil {
		return 0, fmt.Errorf("api: move device into product: %w", err)
	}
	return importUpdated, nil
}

// handleRemoveProductDevice is DELETE /v1/products/{p}/devices/{id}
// (docs/particle-api.md#unclaiming-and-removing-devices): the device leaves the
// product, and a customer's device loses its owner (customers belong to the
// product); a user who owns it keeps it. With {"deny":true} the device instead
// stays in the product, denied (no longer quarantined). Answer 204.
//
// A device whose firmware names the product joins it again when it next
// connects; denying it is how to keep it out.
func (s *server) handleRemoveProductDevice(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	deny := rq.params.isTrue("deny")
	if deny {
		d.Denied, d.Quarantined = true, false
	} else {
		d.ProductID, d.CustomerID, d.Development, d.Quarantined, d.Denied = 0, "", false, false, false
	}
	d.UpdatedAt = rq.now
	if err := s.store.UpdateDevice(rq.ctx, d); err != nil {
		return fmt.Errorf("api: remove device from product: %w", err)
	}
	s.reloadDevice(rq, d.ID)
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "device removed from product", slog.String("device", d.ID),
		slog.Int64("product", rq.product.ID), slog.Bool("denied", deny))
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRemoveProductDeviceOwner is DELETE
// /v1/products/{p}/devices/{id}/owner
// (docs/particle-api.md#unclaiming-and-removing-devices): the device loses its
// owner, user or customer, and stays in the product. Answer {"ok":true}.
func (s *server) handleRemoveProductDeviceOwner(rq *request) error {
	d, err := s.pathDevice(rq)
	if err != nil {
		return err
	}
	if err := s.store.UnclaimDevice(rq.ctx, d.ID); err != nil {
		return fmt.Errorf("api: unclaim product device: %w", err)
	}
	s.reloadDevice(rq, d.ID)
	s.log.LogAttrs(rq.ctx, slog.LevelInfo, "product device unclaimed", slog.String("device", d.ID),
		slog.Int64("product", rq.product.ID))
	return writeJSON(rq.w, http.StatusOK, okBody)
}
