package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Device is the device object of the device routes.
type Device struct {
	// ID is the 24-hex-digit device ID.
	ID string `json:"id"`
	// Name is the device's name, nil when unnamed.
	Name *string `json:"name"`
	// Owner is the owner's username or customer e-mail, nil when
	// unclaimed.
	Owner *string `json:"owner"`
	// LastIPAddress is the address of its last connection.
	LastIPAddress *string `json:"last_ip_address"`
	// LastHeard is the ISO-8601 time of its last message.
	LastHeard *string `json:"last_heard"`
	// LastHandshakeAt is the ISO-8601 time of its last handshake.
	LastHandshakeAt *string `json:"last_handshake_at"`
	// ProductID is its product, or its platform when in none.
	ProductID int64 `json:"product_id"`
	// PlatformID is its platform (6 = Photon).
	PlatformID int `json:"platform_id"`
	// Online is true while it is connected.
	Online bool `json:"online"`
	// Connected is the deprecated alias of Online.
	Connected bool `json:"connected"`
	// Cellular is true for cellular devices.
	Cellular bool `json:"cellular"`
	// Notes is free text, nil when none.
	Notes *string `json:"notes"`
	// Functions are the cloud functions it registered.
	Functions []string `json:"functions"`
	// Variables maps its cloud variables to their types.
	Variables map[string]string `json:"variables"`
	// Status is "normal" or another state.
	Status string `json:"status"`
	// SystemFirmwareVersion is its Device OS version, when known.
	SystemFirmwareVersion string `json:"system_firmware_version,omitempty"`
	// FirmwareProductID is set for a device in a product.
	FirmwareProductID int64 `json:"firmware_product_id,omitempty"`
	// Development marks a product device in development mode.
	Development bool `json:"development,omitempty"`
	// Quarantined marks a product device kept out of the fleet.
	Quarantined bool `json:"quarantined,omitempty"`
	// Denied marks a product device refused by the product.
	Denied bool `json:"denied,omitempty"`
}

// devicePath is /v1/devices/{id}.
func devicePath(id string) string { return "/v1/devices/" + pathEscape(id) }

// ListDevices is GET /v1/devices: the caller's devices.
func (c *Client) ListDevices(ctx context.Context) ([]Device, error) {
	var out []Device
	err := c.do(ctx, call{method: "GET", path: "/v1/devices"}, &out)
	return out, err
}

// GetDevice is GET /v1/devices/{id}, id being a device ID or name.
func (c *Client) GetDevice(ctx context.Context, id string) (*Device, error) {
	var d Device
	if err := c.do(ctx, call{method: "GET", path: devicePath(id)}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DeviceUpdate is the answer of the device update calls (Rename,
// SetNotes, Signal): the fields that changed.
type DeviceUpdate struct {
	// ID is the device ID.
	ID string `json:"id"`
	// Name is the new name, when renamed.
	Name string `json:"name,omitempty"`
	// Notes is the new notes, when changed.
	Notes *string `json:"notes,omitempty"`
	// Connected is set by Signal.
	Connected bool `json:"connected,omitempty"`
	// Signaling is set by Signal: whether the LED now shows the rainbow.
	Signaling bool `json:"signaling,omitempty"`
	// UpdatedAt is the ISO-8601 time of a stored change.
	UpdatedAt string `json:"updated_at,omitempty"`
}

// updateDevice is PUT /v1/devices/{id} with form.
func (c *Client) updateDevice(ctx context.Context, id string, form url.Values) (*DeviceUpdate, error) {
	var out DeviceUpdate
	if err := c.do(ctx, call{method: "PUT", path: devicePath(id), form: form}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rename is PUT /v1/devices/{id} with name.
func (c *Client) Rename(ctx context.Context, id, name string) (*DeviceUpdate, error) {
	return c.updateDevice(ctx, id, url.Values{"name": {name}})
}

// SetNotes is PUT /v1/devices/{id} with notes.
func (c *Client) SetNotes(ctx context.Context, id, notes string) (*DeviceUpdate, error) {
	return c.updateDevice(ctx, id, url.Values{"notes": {notes}})
}

// Signal is PUT /v1/devices/{id} with signal: it starts (on) or stops the
// rainbow LED of an online device.
func (c *Client) Signal(ctx context.Context, id string, on bool) (*DeviceUpdate, error) {
	v := "0"
	if on {
		v = "1"
	}
	return c.updateDevice(ctx, id, url.Values{"signal": {v}})
}

// Ping is PUT /v1/devices/{id}/ping: whether the device answers now.
func (c *Client) Ping(ctx context.Context, id string) (online bool, err error) {
	var out struct {
		Online bool `json:"online"`
	}
	err = c.do(ctx, call{method: "PUT", path: devicePath(id) + "/ping"}, &out)
	return out.Online, err
}

// FunctionResult is the answer of CallFunction.
type FunctionResult struct {
	// ID is the device ID.
	ID string `json:"id"`
	// Name is the device's name, nil when unnamed.
	Name *string `json:"name"`
	// Connected is true: the device answered.
	Connected bool `json:"connected"`
	// ReturnValue is the function's int result.
	ReturnValue int32 `json:"return_value"`
}

// CallFunction is POST /v1/devices/{id}/{function} with arg: it runs a
// cloud function on the device and returns its result.
func (c *Client) CallFunction(ctx context.Context, id, function, arg string) (*FunctionResult, error) {
	var out FunctionResult
	err := c.do(ctx, call{method: "POST", path: devicePath(id) + "/" + pathEscape(function),
		form: url.Values{"arg": {arg}}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Variable is the answer of GetVariable.
type Variable struct {
	// Name is the variable's name.
	Name string `json:"name"`
	// Result is the value as JSON: a number, a string, a boolean or null.
	// Int, Float, String and Bool decode it.
	Result json.RawMessage `json:"result"`
	// CoreInfo describes the device that answered.
	CoreInfo struct {
		// Name is the device's name, nil when unnamed.
		Name *string `json:"name"`
		// DeviceID is the device ID.
		DeviceID string `json:"deviceID"`
		// Connected is true: the device answered.
		Connected bool `json:"connected"`
		// LastHeard is the ISO-8601 time of its last message.
		LastHeard *string `json:"last_heard"`
		// ProductID is its product, or its platform when in none.
		ProductID int64 `json:"product_id"`
	} `json:"coreInfo"`
}

// Int returns an integer result.
func (v *Variable) Int() (int64, error) {
	n, err := strconv.ParseInt(string(v.Result), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cloud: variable %s is not an integer: %s", v.Name, v.Result)
	}
	return n, nil
}

// Float returns a numeric result.
func (v *Variable) Float() (float64, error) {
	var f float64
	if err := json.Unmarshal(v.Result, &f); err != nil {
		return 0, fmt.Errorf("cloud: variable %s is not a number: %s", v.Name, v.Result)
	}
	return f, nil
}

// String returns a string result.
func (v *Variable) String() (string, error) {
	var s string
	if err := json.Unmarshal(v.Result, &s); err != nil {
		return "", fmt.Errorf("cloud: variable %s is not a string: %s", v.Name, v.Result)
	}
	return s, nil
}

// Bool returns a boolean result.
func (v *Variable) Bool() (bool, error) {
	var b bool
	if err := json.Unmarshal(v.Result, &b); err != nil {
		return false, fmt.Errorf("cloud: variable %s is not a boolean: %s", v.Name, v.Result)
	}
	return b, nil
}

// GetVariable is GET /v1/devices/{id}/{variable}: it reads a cloud
// variable of the device.
func (c *Client) GetVariable(ctx context.Context, id, variable string) (*Variable, error) {
	var out Variable
	if err := c.do(ctx, call{method: "GET", path: devicePath(id) + "/" + pathEscape(variable)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClaimResult is the answer of ClaimDevice.
type ClaimResult struct {
	// OK is true.
	OK bool `json:"ok"`
	// ID is the device ID.
	ID string `json:"id"`
	// UserID is the new owner (user or customer ID).
	UserID string `json:"user_id"`
	// Connected is whether the device is online.
	Connected bool `json:"connected"`
}

// ClaimDevice is POST /v1/devices with id: the caller becomes the
// device's owner.
func (c *Client) ClaimDevice(ctx context.Context, id string) (*ClaimResult, error) {
	var out ClaimResult
	if err := c.do(ctx, call{method: "POST", path: "/v1/devices", form: url.Values{"id": {id}}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UnclaimDevice is DELETE /v1/devices/{id}: the device loses its owner.
func (c *Client) UnclaimDevice(ctx context.Context, id string) error {
	return c.do(ctx, call{method: "DELETE", path: devicePath(id)}, nil)
}

// ClaimCode is the answer of CreateClaimCode.
type ClaimCode struct {
	// ClaimCode is the code to give the device (during setup).
	ClaimCode string `json:"claim_code"`
	// DeviceIDs are the caller's devices.
	DeviceIDs []string `json:"device_ids"`
}

// CreateClaimCode is POST /v1/device_claims, or with product not ""
// POST /v1/products/{product}/device_claims: a code that makes the first
// device reporting it the caller's.
func (c *Client) CreateClaimCode(ctx context.Context, product string) (*ClaimCode, error) {
	path := "/v1/device_claims"
	if product != "" {
		path = productPath(product) + "/device_claims"
	}
	var out ClaimCode
	if err := c.do(ctx, call{method: "POST", path: path, form: url.Values{}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ProductDevices is a page of ListProductDevices.
type ProductDevices struct {
	// Devices are the product's devices of this page.
	Devices []Device `json:"devices"`
	// Customers are the owners of those devices that are customers.
	Customers []Customer `json:"customers"`
	// Meta is the paging information.
	Meta Meta `json:"meta"`
}

// ListProductDevices is GET /v1/products/{product}/devices: one page of
// the product's devices.
func (c *Client) ListProductDevices(ctx context.Context, product string, page Page) (*ProductDevices, error) {
	var out ProductDevices
	if err := c.do(ctx, call{method: "GET", path: productPath(product) + "/devices", query: page.query()}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// productDevicePath is /v1/products/{product}/devices/{id}.
func productDevicePath(product, id string) string {
	return productPath(product) + "/devices/" + pathEscape(id)
}

// GetProductDevice is GET /v1/products/{product}/devices/{id}: a device
// of the product, for its team and product tokens (id is a device ID,
// not a name).
func (c *Client) GetProductDevice(ctx context.Context, product, id string) (*Device, error) {
	var d Device
	if err := c.do(ctx, call{method: "GET", path: productDevicePath(product, id)}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// PingProductDevice is PUT /v1/products/{product}/devices/{id}/ping.
func (c *Client) PingProductDevice(ctx context.Context, product, id string) (online bool, err error) {
	var out struct {
		Online bool `json:"online"`
	}
	err = c.do(ctx, call{method: "PUT", path: productDevicePath(product, id) + "/ping"}, &out)
	return out.Online, err
}

// CallProductFunction is POST /v1/products/{product}/devices/{id}/{function}.
func (c *Client) CallProductFunction(ctx context.Context, product, id, function, arg string) (*FunctionResult, error) {
	var out FunctionResult
	err := c.do(ctx, call{method: "POST", path: productDevicePath(product, id) + "/" + pathEscape(function),
		form: url.Values{"arg": {arg}}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetProductVariable is GET /v1/products/{product}/devices/{id}/{variable}.
func (c *Client) GetProductVariable(ctx context.Context, product, id, variable string) (*Variable, error) {
	var out Variable
	if err := c.do(ctx, call{method: "GET", path: productDevicePath(product, id) + "/" + pathEscape(variable)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ProvisionDevice is POST /v1/provisioning/{id}: it gives the cloud the
// device's public key (PEM), so that the device can connect. With product
// not "", the device joins that product; without, an unowned device
// becomes the caller's. It sends the fields `particle keys send` sends
// (docs/sdk-cloud.md#provisioning): publicKey, algorithm ("rsa" for an RSA
// key, "ecc" for a P-256 key of a Gen 3 device, read from the key itself),
// filename and product_id.
func (c *Client) ProvisionDevice(ctx context.Context, id string, publicKeyPEM []byte, product string) error {
	return c.ProvisionDeviceWith(ctx, id, publicKeyPEM, ProvisionOptions{Product: product})
}

// ProvisionOptions are the optional fields of ProvisionDeviceWith.
type ProvisionOptions struct {
	// Product is the product the device joins (ID or slug), "" for none.
	Product string
	// Algorithm is "rsa" or "ecc"; "" means read it from the key.
	Algorithm string
	// Filename names where the key came from, as the CLI reports it;
	// "" sends "cloud-sdk".
	Filename string
}

// ProvisionDeviceWith is ProvisionDevice with every field of the request.
func (c *Client) ProvisionDeviceWith(ctx context.Context, id string, publicKeyPEM []byte, o ProvisionOptions) error {
	alg := o.Algorithm
	if alg == "" {
		alg = KeyAlgorithm(publicKeyPEM)
	}
	name := o.Filename
	if name == "" {
		name = "cloud-sdk"
	}
	form := url.Values{"deviceID": {id}, "publicKey": {string(publicKeyPEM)}, "filename": {name}, "order": {name + "_" + id}}
	if alg != "" {
		form.Set("algorithm", alg)
	}
	if o.Product != "" {
		form.Set("product_id", o.Product)
	}
	var out struct {
		Error any `json:"error"`
	}
	if err := c.do(ctx, call{method: "POST", path: "/v1/provisioning/" + pathEscape(id), form: form}, &out); err != nil {
		return err
	}
	// particle-cli treats any answer with "error" as a failure, 2xx or not.
	if out.Error != nil {
		return &Error{StatusCode: http.StatusOK, Code: fmt.Sprint(out.Error)}
	}
	return nil
}

// KeyAlgorithm returns the provisioning algorithm of a public key in PEM
// (SPKI or PKCS#1): "rsa" or "ecc"; "" when the key cannot be read, in
// which case the server decides from the key it is sent.
func KeyAlgorithm(publicKeyPEM []byte) string {
	block, _ := pem.Decode(publicKeyPEM)
	if block == nil {
		return ""
	}
	if block.Type == "RSA PUBLIC KEY" {
		return "rsa"
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return ""
	}
	switch k.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecc"
	}
	return ""
}
