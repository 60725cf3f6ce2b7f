package api_test

import (
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
)

// cred is a kind of credential a request may carry.
type cred int

// The credential columns of the authorization matrix.
const (
	credNone          cred = iota // nothing
	credOwner                     // token of the user owning product "widget"
	credOther                     // token of another user (owns "gadget")
	credCustomer                  // token of a customer of "widget"
	credOtherCustomer             // token of a customer of "gadget"
	credProduct                   // product bearer token of "widget"
	credCreateClient              // Basic credentials of widget's customers:create client
	credExpired                   // the owner's expired token
	credRevoked                   // the owner's revoked token
	credAPIUser                   // API user of "widget" with apiUserScopes
	numCreds
)

var credNames = [numCreds]string{"none", "owner", "other-user", "customer", "other-customer",
	"product-token", "create-client", "expired", "revoked", "api-user"}

// apply adds the credential to r. On basic rows the two user columns send
// HTTP Basic username:password instead of their tokens.
func (w *world) apply(r *apitest.Req, c cred, basic bool) {
	switch c {
	case credOwner:
		if basic {
			r.BasicUser, r.BasicPass = ownerName, ownerPass
			return
		}
		r.Token = w.ownerToken
	case credOther:
		if basic {
			r.BasicUser, r.BasicPass = otherName, otherPass
			return
		}
		r.Token = w.otherToken
	case credCustomer:
		r.Token = w.customerToken
	case credOtherCustomer:
		r.Token = w.otherCustToken
	case credProduct:
		r.Token = w.productToken
	case credCreateClient:
		r.BasicUser, r.BasicPass = w.createClient, w.createSecret
	case credExpired:
		r.Token = w.expiredToken
	case credRevoked:
		r.Token = w.revokedToken
	case credAPIUser:
		r.Token = w.apiUserToken
	}
}

// authzRow is one endpoint of the matrix: a request and the status
// expected under each credential column. Path and body take world
// placeholders (see (*world).expand); a body starting with "{" is JSON,
// otherwise form pairs.
type authzRow struct {
	method, path, body string
	basic              bool // the user columns send Basic credentials
	want               [numCreds]int
}

// authzRows lists every endpoint. Columns: none, owner, other-user,
// customer, other-customer, product-token, create-client, expired,
// revoked, api-user. New routes append rows here.
var authzRows = []authzRow{
	// The token endpoint (docs/particle-api.md#the-token-endpoint): Bearer
	// headers are ignored; Basic client creds replace the form's client (a
	// customers:create product client logs in customers only, and the owner
	// is not one).
	{"POST", "/oauth/token", "grant_type=password&username={owner}&password={ownerpass}&client_id=particle&client_secret=particle", false,
		[numCreds]int{200, 200, 200, 200, 200, 200, 400, 200, 200, 200}},
	{"POST", "/oauth/token", "grant_type=client_credentials", false,
		[numCreds]int{400, 400, 400, 400, 400, 400, 400, 400, 400, 400}},
	// The browser sign-in ignores tokens: without a client it is an error
	// page, and a form without its token is refused (authorize_test.go).
	{"GET", "/oauth/authorize", "", false,
		[numCreds]int{400, 400, 400, 400, 400, 400, 400, 400, 400, 400}},
	{"POST", "/oauth/authorize", "step=login&username={owner}&password={ownerpass}", false,
		[numCreds]int{403, 403, 403, 403, 403, 403, 403, 403, 403, 403}},

	// Access tokens (docs/particle-api.md#managing-access-tokens).
	{"GET", "/v1/access_tokens", "", true,
		[numCreds]int{401, 200, 200, 401, 401, 401, 401, 401, 401, 401}},
	{"DELETE", "/v1/access_tokens", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"GET", "/v1/access_tokens/current", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 200, 400, 401, 401, 200}},
	{"DELETE", "/v1/access_tokens/current", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 200, 400, 401, 401, 200}},
	// Possession of the token is the proof; Basic credentials, when sent
	// (the create-client column sends its client id and secret), must be a
	// user's.
	{"DELETE", "/v1/access_tokens/{victim}", "", false,
		[numCreds]int{200, 200, 200, 200, 200, 200, 401, 200, 200, 200}},

	// MFA (docs/particle-api.md#mfa-enrolment).
	{"GET", "/v1/user/mfa-enable", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/user/mfa-enable", `{"mfa_token":"0000000000000000000000000000000000000000","otp":"123456"}`, false,
		[numCreds]int{400, 400, 400, 403, 403, 403, 400, 401, 401, 400}},
	{"PUT", "/v1/user/mfa-disable", `{"current_password":"{ownerpass}"}`, false,
		[numCreds]int{400, 400, 400, 403, 403, 403, 400, 401, 401, 400}},

	// Users (docs/particle-api.md#users). Sign-up is closed by default.
	{"POST", "/v1/users", `{"username":"new@example.com","password":"new-password"}`, false,
		[numCreds]int{403, 403, 403, 403, 403, 403, 403, 403, 403, 403}},
	{"GET", "/v1/user", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	// Remembered consents (authorize_grants.go): the caller's own, none in
	// these worlds, so a revocation finds nothing.
	{"GET", "/v1/user/grants", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"DELETE", "/v1/user/grants/{uclient}", "", false,
		[numCreds]int{400, 404, 404, 404, 404, 403, 400, 401, 401, 400}},
	// The authorization server's metadata (RFC 8414) is public.
	{"GET", "/.well-known/oauth-authorization-server", "", false,
		[numCreds]int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
	{"PUT", "/v1/user", `{"account_info":{"first_name":"Ada"}}`, false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"DELETE", "/v1/user", `{"password":"{ownerpass}"}`, false,
		[numCreds]int{400, 200, 400, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/user/password-reset", `{"username":"{owner}"}`, false,
		[numCreds]int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
	{"PUT", "/v1/user/password-reset", `{"token":"0000000000000000000000000000000000000000","password":"new-password"}`, false,
		[numCreds]int{400, 400, 400, 400, 400, 400, 400, 400, 400, 400}},
	{"POST", "/v1/user/verify", `{"token":"abc"}`, false,
		[numCreds]int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
	{"GET", "/v1/user/identify", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/orgs", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},

	// User clients (docs/particle-api.md#oauth-clients). Another user's client
	// is not found.
	{"GET", "/v1/clients", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 200}},
	{"POST", "/v1/clients", `{"name":"My App"}`, false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"PUT", "/v1/clients/{uclient}", `{"name":"Renamed"}`, false,
		[numCreds]int{400, 200, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"DELETE", "/v1/clients/{uclient}", "", false,
		[numCreds]int{400, 204, 404, 403, 403, 403, 400, 401, 401, 400}},

	// Products (docs/particle-api.md#products).
	{"GET", "/v1/user/products", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/products", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/user/products", `{"product":{"name":"New Thing","platform_id":12}}`, false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/orgs/acme/products", "", false,
		[numCreds]int{400, 404, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/orgs/acme/products", `{"name":"X","platform_id":12}`, false,
		[numCreds]int{400, 404, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/products/{p}", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 200}},
	{"GET", "/v1/products/{pid}", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 200}},
	{"GET", "/v1/products/no-such-product", "", false,
		[numCreds]int{400, 404, 404, 403, 403, 404, 400, 401, 401, 404}},

	// Product clients (docs/particle-api.md#oauth-clients).
	{"GET", "/v1/products/{p}/clients", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 200}},
	{"POST", "/v1/products/{p}/clients", `{"name":"Phone App","scope":"customers:create"}`, false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	{"PUT", "/v1/products/{p}/clients/{client}", `{"name":"Renamed"}`, false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	{"DELETE", "/v1/products/{p}/clients/{client}", "", false,
		[numCreds]int{400, 204, 403, 403, 403, 204, 400, 401, 401, 400}},

	// Team (docs/particle-api.md#teams).
	{"GET", "/v1/products/{p}/team", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	{"POST", "/v1/products/{p}/team", `{"username":"new@example.com"}`, false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	{"DELETE", "/v1/products/{p}/team/{member}", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	{"GET", "/v1/products/{p}/team/invites", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	// Invitations addressed to the caller (docs/api.md, Team invitations):
	// users only, API users refused.
	{"GET", "/v1/user/team-invites", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/user/team-invites/accept", `{"token":"0000000000000000000000000000000000000000"}`, false,
		[numCreds]int{400, 400, 400, 403, 403, 403, 400, 401, 401, 400}},
	{"DELETE", "/v1/user/team-invites/{p}", "", false,
		[numCreds]int{400, 404, 404, 403, 403, 403, 400, 401, 401, 400}},

	// Customers (docs/particle-api.md#customers): client credentials, team
	// tokens and product tokens create; customers and outsiders do not.
	{"POST", "/v1/products/{p}/customers", "email=new@example.com&password=new-password", false,
		[numCreds]int{400, 201, 403, 403, 403, 201, 201, 401, 401, 400}},
	{"GET", "/v1/products/{p}/customers", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 200}},
	{"PUT", "/v1/products/{p}/customers/{cust}", `{"password":"new-password"}`, false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},
	{"DELETE", "/v1/products/{p}/customers/{cust}", "", false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},

	// Devices (docs/particle-api.md#devices). The world holds one device
	// claimed by owner and one product device claimed by customer; a device is
	// visible only to its owner (user or customer) on these user-level routes.
	{"GET", "/v1/devices", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"GET", "/v1/devices/" + authzDeviceID, "", false,
		[numCreds]int{400, 403, 403, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/devices/" + ownerDeviceID, "", false,
		[numCreds]int{400, 200, 403, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/devices/" + customerDeviceID, "", false,
		[numCreds]int{400, 403, 403, 200, 403, 403, 400, 401, 401, 400}},

	// Updates and calls on the user routes
	// (docs/particle-api.md#device-endpoints): the device's owner only, user or
	// customer (apitest's fake DeviceCaller answers the calls).
	{"PUT", "/v1/devices/" + ownerDeviceID, `{"name":"lamp"}`, false, ownerOnly},
	{"PUT", "/v1/devices/" + customerDeviceID, `{"signal":"1"}`, false, customerOnly},
	{"PUT", "/v1/devices/" + ownerDeviceID + "/ping", "", false, ownerOnly},
	{"PUT", "/v1/devices/" + customerDeviceID + "/ping", "", false, customerOnly},
	{"POST", "/v1/devices/" + ownerDeviceID + "/" + authzFunction, `{"args":"on"}`, false, ownerOnly},
	{"POST", "/v1/devices/" + customerDeviceID + "/" + authzFunction, "arg=on", false, customerOnly},
	{"GET", "/v1/devices/" + ownerDeviceID + "/" + authzVariable, "", false, ownerOnly},
	{"GET", "/v1/devices/" + customerDeviceID + "/" + authzVariable, "", false, customerOnly},

	// Claim codes (docs/particle-api.md#claiming; any user or customer; on a
	// product: its team, its customers, its product token), claiming by ID,
	// unclaiming.
	{"POST", "/v1/device_claims", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"POST", "/v1/products/{p}/device_claims", "", false,
		[numCreds]int{400, 200, 403, 200, 403, 200, 400, 401, 401, 400}},
	{"POST", "/v1/devices", `{"id":"` + freeDeviceID + `"}`, false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/devices", `{"id":"` + ownerDeviceID + `"}`, false, ownerOnly},
	{"DELETE", "/v1/devices/" + ownerDeviceID, "", false, ownerOnly},
	{"DELETE", "/v1/devices/" + customerDeviceID, "", false, customerOnly},

	// Product devices (docs/particle-api.md#devices): the team and the product
	// token; the API user lacks the devices scopes. A device outside the
	// product is not found there.
	{"GET", "/v1/products/{p}/devices", "", false, teamOnly},
	{"POST", "/v1/products/{p}/devices", `{"id":"` + freeDeviceID + `"}`, false, teamOnly},
	{"GET", "/v1/products/{p}/devices/" + customerDeviceID, "", false, teamOnly},
	{"GET", "/v1/products/{p}/devices/" + ownerDeviceID, "", false,
		[numCreds]int{400, 404, 403, 403, 403, 404, 400, 401, 401, 400}},
	{"PUT", "/v1/products/{p}/devices/" + customerDeviceID, `{"development":true}`, false, teamOnly},
	{"PUT", "/v1/products/{p}/devices/" + customerDeviceID + "/ping", "", false, teamOnly},
	{"POST", "/v1/products/{p}/devices/" + customerDeviceID + "/" + authzFunction, `{"args":"on"}`, false, teamOnly},
	{"GET", "/v1/products/{p}/devices/" + customerDeviceID + "/" + authzVariable, "", false, teamOnly},
	// Product firmware (firmware.go): the team only; an upload without a
	// file and the versions the world lacks fail after authorization.
	{"GET", "/v1/products/{p}/firmware", "", false, teamOnly},
	{"POST", "/v1/products/{p}/firmware", `{"version":1,"title":"one"}`, false, teamFails(400)},
	{"PUT", "/v1/products/{p}/firmware/release", `{"version":1}`, false, teamFails(404)},
	{"GET", "/v1/products/{p}/firmware/4321", "", false, teamFails(404)},
	{"PUT", "/v1/products/{p}/firmware/4321", `{"title":"uno"}`, false, teamFails(404)},
	{"DELETE", "/v1/products/{p}/firmware/4321", "", false, teamFails(404)},
	{"GET", "/v1/products/{p}/firmware/4321/binary", "", false, teamFails(404)},
	{"DELETE", "/v1/products/{p}/devices/" + customerDeviceID + "/owner", "", false, teamOnly},
	{"DELETE", "/v1/products/{p}/devices/" + customerDeviceID, "", false,
		[numCreds]int{400, 204, 403, 403, 403, 204, 400, 401, 401, 400}},

	// Device keys
	// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key): any user
	// may key a new device, a product token into its own product; customers
	// never.
	{"POST", "/v1/provisioning/" + authzDeviceID, `{"publicKey":` + jsonString(devicePubPEM) + `}`, false,
		[numCreds]int{400, 200, 200, 403, 403, 200, 400, 401, 401, 400}},
	{"POST", "/v1/provisioning/" + authzDeviceID, `{"publicKey":` + jsonString(devicePubPEM) + `,"product_id":"{pid}"}`, false,
		[numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}},

	// Publishing (docs/particle-api.md#publishing-events): users and customers
	// on /v1/devices/events, the team and the product token on the product
	// route (the API user lacks events:send).
	{"POST", "/v1/devices/events", `{"name":"authz-event","data":"x"}`, false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"POST", "/v1/products/{p}/events", "name=authz-event&data=x&private=true", false, teamOnly},

	// Streams (docs/particle-api.md#event-streams): the status is checked when
	// the stream starts (":ok" flushed), then the client goes away. /v1/events
	// needs a prefix; it takes every token kind. Device streams follow the
	// device routes.
	{"GET", "/v1/events", "", false,
		[numCreds]int{400, 400, 400, 400, 400, 400, 400, 401, 401, 400}},
	{"GET", "/v1/events/" + authzPrefix, "", false,
		[numCreds]int{400, 200, 200, 200, 200, 200, 400, 401, 401, 400}},
	{"GET", "/v1/devices/events", "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"GET", "/v1/devices/events/" + authzPrefix, "", false,
		[numCreds]int{400, 200, 200, 200, 200, 403, 400, 401, 401, 400}},
	{"GET", "/v1/devices/" + ownerDeviceID + "/events", "", false, ownerOnly},
	{"GET", "/v1/devices/" + customerDeviceID + "/events/" + authzPrefix, "", false, customerOnly},
	{"GET", "/v1/products/{p}/events", "", false, teamOnly},
	{"GET", "/v1/products/{p}/events/" + authzPrefix, "", false, teamOnly},
	{"GET", "/v1/products/{p}/devices/" + customerDeviceID + "/events", "", false, teamOnly},
	{"GET", "/v1/products/{p}/devices/" + ownerDeviceID + "/events/" + authzPrefix, "", false,
		[numCreds]int{400, 404, 403, 403, 403, 404, 400, 401, 401, 400}},

	// Webhooks (docs/particle-api.md#the-legacy-webhook-api) and integrations
	// (docs/particle-api.md#the-integrations-api): the user's own (sandbox)
	// hooks, and product "widget"'s hooks for its team and product token.
	// Another user's hook is not found; customers are refused; the API user
	// lacks the integrations scopes. Without a delivery engine the test route
	// answers 503.
	{"POST", "/v1/webhooks", `{"event":"authz","url":"https://example.com/in"}`, false,
		[numCreds]int{400, 201, 201, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/webhooks", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/webhooks/" + ownerHookID, "", false, hookOwnerOnly},
	{"GET", "/v1/webhooks/" + productHookID, "", false,
		[numCreds]int{400, 404, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"DELETE", "/v1/webhooks/" + ownerHookID, "", false, hookOwnerOnly},
	{"GET", "/v1/webhooks/" + ownerHookID + "/deliveries", "", false, hookOwnerOnly},
	{"POST", "/v1/products/{p}/webhooks", `{"event":"authz","url":"https://example.com/in"}`, false,
		[numCreds]int{400, 201, 403, 403, 403, 201, 400, 401, 401, 400}},
	{"GET", "/v1/products/{p}/webhooks", "", false, teamOnly},
	{"GET", "/v1/products/{p}/webhooks/" + productHookID, "", false, teamOnly},
	{"GET", "/v1/products/{p}/webhooks/" + ownerHookID, "", false,
		[numCreds]int{400, 404, 403, 403, 403, 404, 400, 401, 401, 400}},
	{"DELETE", "/v1/products/{p}/webhooks/" + productHookID, "", false, teamOnly},
	{"GET", "/v1/products/{p}/webhooks/" + productHookID + "/deliveries", "", false, teamOnly},
	{"POST", "/v1/integrations", `{"integration_type":"Webhook","event":"authz","url":"https://example.com/in"}`, false,
		[numCreds]int{400, 201, 201, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/integrations", "", false,
		[numCreds]int{400, 200, 200, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/integrations/" + ownerHookID, "", false, hookOwnerOnly},
	{"PUT", "/v1/integrations/" + ownerHookID, `{"event":"authz","url":"https://example.com/b"}`, false, hookOwnerOnly},
	{"DELETE", "/v1/integrations/" + ownerHookID, "", false,
		[numCreds]int{400, 204, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/integrations/" + ownerHookID + "/test", "", false,
		[numCreds]int{400, 503, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"GET", "/v1/integrations/" + ownerHookID + "/deliveries", "", false, hookOwnerOnly},
	{"POST", "/v1/products/{p}/integrations", `{"event":"authz","url":"https://example.com/in"}`, false,
		[numCreds]int{400, 201, 403, 403, 403, 201, 400, 401, 401, 400}},
	{"GET", "/v1/products/{p}/integrations", "", false, teamOnly},
	{"GET", "/v1/products/{p}/integrations/" + productHookID, "", false, teamOnly},
	{"PUT", "/v1/products/{p}/integrations/" + productHookID, `{"event":"authz","url":"https://example.com/b"}`, false, teamOnly},
	{"DELETE", "/v1/products/{p}/integrations/" + productHookID, "", false,
		[numCreds]int{400, 204, 403, 403, 403, 204, 400, 401, 401, 400}},
	{"POST", "/v1/products/{p}/integrations/" + productHookID + "/test", "", false,
		[numCreds]int{400, 503, 403, 403, 403, 503, 400, 401, 401, 400}},
	{"GET", "/v1/products/{p}/integrations/" + productHookID + "/deliveries", "", false, teamOnly},
	{"GET", "/v1/orgs/acme/integrations", "", false,
		[numCreds]int{400, 404, 404, 403, 403, 403, 400, 401, 401, 400}},
	{"POST", "/v1/orgs/acme/integrations", `{"event":"authz","url":"https://example.com/in"}`, false,
		[numCreds]int{400, 404, 404, 403, 403, 403, 400, 401, 401, 400}},

	// Unknown routes are 404 whoever asks.
	{"GET", "/v1/no/such/route", "", false,
		[numCreds]int{404, 404, 404, 404, 404, 404, 404, 404, 404, 404}},
}

// Common rows of device routes: the device's owning user, its owning
// customer, and product "widget"'s team with its product token.
var (
	ownerOnly    = [numCreds]int{400, 200, 403, 403, 403, 403, 400, 401, 401, 400}
	customerOnly = [numCreds]int{400, 403, 403, 200, 403, 403, 400, 401, 401, 400}
	teamOnly     = [numCreds]int{400, 200, 403, 403, 403, 200, 400, 401, 401, 400}
	// hookOwnerOnly is a route of owner's sandbox webhook ownerHookID.
	hookOwnerOnly = [numCreds]int{400, 200, 404, 403, 403, 403, 400, 401, 401, 400}
)

// TestAuthorizationMatrix sends every row under every credential, each
// cell in a fresh world so that destructive cells cannot leak. The world
// is seeded once and each cell opens a copy of its database (seeding
// ~2,000 worlds took most of the package's time).
func TestAuthorizationMatrix(t *testing.T) {
	seed := newWorldOpts(t, apitest.Options{InMemory: true})
	seed.addDevices(t)
	seed.addWebhooks(t)
	saved := saveWorld(t, seed)
	for _, row := range authzRows {
		t.Run(row.method+" "+row.path, func(t *testing.T) {
			t.Parallel()
			for c := cred(0); c < numCreds; c++ {
				w := saved.copy(t, apitest.Options{})
				w.setDeviceValues()
				r := w.bodyReq(row.method, row.path, row.body)
				w.apply(&r, c, row.basic)
				resp := w.Do(r)
				if resp.Status != row.want[c] {
					t.Errorf("%s: status %d, want %d; body %s", credNames[c], resp.Status, row.want[c], resp.Body)
				}
			}
		})
	}
}

// TestAuthorizationMatrixCoversRoutes fails when a route has no row.
func TestAuthorizationMatrixCoversRoutes(t *testing.T) {
	covered := map[string]bool{}
	for _, row := range authzRows {
		covered[row.method+" "+normalizePattern(row.path)] = true
	}
	for _, rt := range api.Routes() {
		if !covered[rt] {
			t.Errorf("route %s has no row in authzRows", rt)
		}
	}
}

// normalizePattern turns a row path into its route pattern.
func normalizePattern(p string) string {
	params := map[string]string{
		"{p}": "{p}", "{pid}": "{p}", "no-such-product": "{p}", "{client}": "{client}", "{uclient}": "{client}",
		"{cust}": "{email}", "{member}": "{username}", "{victim}": "{token}", "acme": "{org}",
		authzDeviceID:    "{id}",
		ownerDeviceID:    "{id}",
		customerDeviceID: "{id}",
		freeDeviceID:     "{id}",
		authzFunction:    "{name}",
		authzVariable:    "{name}",
		authzPrefix:      "{prefix...}",
		ownerHookID:      "{hook}",
		productHookID:    "{hook}",
		"4321":           "{version}", // a product firmware version no world has
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if param, found := params[seg]; found {
			segs[i] = param
		}
	}
	return strings.Join(segs, "/")
}

// teamFails is teamOnly for a request the team is allowed to make but that
// fails with status once authorized.
func teamFails(status int) [numCreds]int {
	w := teamOnly
	w[credOwner], w[credProduct] = status, status
	return w
}
