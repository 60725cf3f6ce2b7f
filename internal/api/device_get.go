package api

import (
	"errors"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// GET /v1/devices/{id} by device ID answers from the device list's cache
// (device_list.go): it reads the device's row version alone and, when the
// cache holds the device rendered at that version, copies those bytes
// around the owner's name instead of reading and decoding the whole row
// (its functions, variables and the rest are stored as JSON). A device
// whose version is not cached is read once and cached for the next
// request and for the caller's list.

// getCachedDevice answers GET /v1/devices/{id} from the cache when {id} is
// the ID of one of the caller's devices. ok is false when the store keeps
// no row versions, {id} is not a device ID, or the device is not the
// caller's: the caller then resolves names and answers the 403 itself.
func (s *server) getCachedDevice(rq *request, idOrName string) (ok bool, err error) {
	rv, hasVersion := s.store.(store.DeviceRowVersions)
	ls, hasLists := s.store.(store.DeviceLists)
	if !hasVersion || !hasLists || s.devList == nil {
		return false, nil
	}
	parsed, err := protocol.ParseDeviceID(idOrName)
	if err != nil {
		return false, nil
	}
	id := parsed.String()
	v, err := rv.DeviceVersion(rq.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	r := s.devList.get(id, v)
	if r == nil {
		devs, err := ls.DevicesByIDs(rq.ctx, []string{id})
		if err != nil {
			return true, err
		}
		if len(devs) == 0 {
			return false, nil // deleted meanwhile
		}
		if !ownsDevice(rq.principal, &devs[0].Device) {
			return false, nil // not cached: others' devices stay out
		}
		if r, err = renderDevice(&devs[0].Device, devs[0].Version); err != nil {
			return true, err
		}
		s.devList.put([]string{id}, []*renderedDevice{r})
	}
	d := &store.Device{OwnerID: r.ownerID, CustomerID: r.customerID}
	if !ownsDevice(rq.principal, d) {
		return false, nil
	}
	name, err := s.deviceOwner(rq, d, callerOwners(rq))
	if err != nil {
		return true, err
	}
	owner, err := ownerValue(name)
	if err != nil {
		return true, err
	}
	body := make([]byte, 0, len(r.pre)+len(owner)+len(r.post)+1)
	body = append(body, r.pre...)
	body = append(body, owner...)
	body = append(body, r.post...)
	writeListBody(rq.w, append(body, '\n'))
	return true, nil
}
