package api

// handlerFunc serves one route. It writes a success response itself and
// returns any failure for writeError to render.
type handlerFunc func(rq *request) error

// limitClass selects a route's own rate limit, on top of the global one.
type limitClass uint8

const (
	limitNone      limitClass = iota
	limitToken                // POST /oauth/token: TokenRate and the failure lockout
	limitSensitive            // account deletion and password reset: SensitiveRate
)

// route is one row of the route table.
type route struct {
	method  string
	pattern string // segments; "{name}" one segment, "{name...}" the rest
	policy  policy
	// scope is the API-user scope the route requires: "" refuses API
	// users, scopeAny admits every API user.
	scope   string
	limit   limitClass
	maxBody int64 // 0: Config.MaxBodyBytes
	// teamRead marks a team route whose handler checks a user token's
	// team access with its first store read (deferTeam): the route's
	// handler calls resolveTeam, or grantTeam with the access read,
	// before it touches the product.
	teamRead bool
	handler  handlerFunc
}

// API-user scope names (Particle's names, docs/particle-api.md#teams).
const (
	scopeClientsList     = "clients:list"
	scopeClientsCreate   = "clients:create"
	scopeClientsUpdate   = "clients:update"
	scopeClientsRemove   = "clients:remove"
	scopeCustomersList   = "customers:list"
	scopeCustomersCreate = "customers:create"
	scopeCustomersUpdate = "customers:update"
	scopeCustomersRemove = "customers:remove"
	scopeProductsList    = "products:list"
	scopeProductsGet     = "products:get"
	scopeTeamList        = "teams.users:list"
	scopeTeamInvite      = "teams.users:invite"
	scopeTeamRemove      = "teams.users:remove"
	scopeTeamUpdate      = "teams.users:update"
	scopeOrganizationGet = "organization:get"
	scopeDevicesList     = "devices:list"
	scopeDevicesGet      = "devices:get"
	scopeDevicesUpdate   = "devices:update"
	scopeDevicesRemove   = "devices:remove"
	scopeDevicesImport   = "devices:import"
	scopeDevicesPing     = "devices:ping"
	scopeFunctionCall    = "devices.function:call"
	scopeVariableGet     = "devices.variable:get"

	// Webhooks and integrations (docs/particle-api.md#webhooks): one set of
	// scopes for both APIs.
	scopeIntegrationsList   = "integrations:list"
	scopeIntegrationsGet    = "integrations:get"
	scopeIntegrationsCreate = "integrations:create"
	scopeIntegrationsUpdate = "integrations:update"
	scopeIntegrationsRemove = "integrations:remove"
	scopeIntegrationsTest   = "integrations:test"
)

// routes is the table of every route the API serves: method, pattern,
// access policy, API-user scope, rate limit and handler. New routes are
// appended here.
func (s *server) routes() []route {
	return []route{
		// The token endpoint (docs/particle-api.md#the-token-endpoint); it
		// ignores Bearer headers.
		{method: "POST", pattern: "/oauth/token", policy: public, limit: limitToken, handler: s.handleToken},
		// The browser sign-in (authorize.go, docs/authentication.md#browser-sign-in).
		{method: "GET", pattern: "/oauth/authorize", policy: public, handler: s.handleAuthorize},
		{method: "POST", pattern: "/oauth/authorize", policy: public, limit: limitToken, handler: s.handleAuthorizePost},
		// Its metadata (RFC 8414) and the consents it remembers (authorize_grants.go).
		{method: "GET", pattern: "/.well-known/oauth-authorization-server", policy: public, handler: s.handleAuthServerMetadata},
		{method: "GET", pattern: "/v1/user/grants", policy: userOrCustomer, handler: s.handleListGrants},
		{method: "DELETE", pattern: "/v1/user/grants/{client}", policy: userOrCustomer, handler: s.handleDeleteGrant},

		// Access tokens (docs/particle-api.md#managing-access-tokens).
		{method: "GET", pattern: "/v1/access_tokens", policy: basicUser, handler: s.handleListTokens},
		{method: "DELETE", pattern: "/v1/access_tokens", policy: userOrCustomer, handler: s.handleDeleteAllTokens},
		{method: "GET", pattern: "/v1/access_tokens/current", policy: anyToken, scope: scopeAny, handler: s.handleCurrentToken},
		{method: "DELETE", pattern: "/v1/access_tokens/current", policy: anyToken, scope: scopeAny, handler: s.handleDeleteCurrentToken},
		{method: "DELETE", pattern: "/v1/access_tokens/{token}", policy: public, handler: s.handleDeleteToken},

		// MFA enrolment (docs/particle-api.md#mfa-enrolment).
		{method: "GET", pattern: "/v1/user/mfa-enable", policy: userOnly, handler: s.handleBeginMFA},
		{method: "POST", pattern: "/v1/user/mfa-enable", policy: userOnly, handler: s.handleConfirmMFA},
		{method: "PUT", pattern: "/v1/user/mfa-disable", policy: userOnly, handler: s.handleDisableMFA},

		// Users (docs/particle-api.md#users).
		{method: "POST", pattern: "/v1/users", policy: public, handler: s.handleSignup},
		{method: "GET", pattern: "/v1/user", policy: userOrCustomer, handler: s.handleGetUser},
		{method: "PUT", pattern: "/v1/user", policy: userOnly, handler: s.handleUpdateUser},
		{method: "DELETE", pattern: "/v1/user", policy: userOnly, limit: limitSensitive, handler: s.handleDeleteUser},
		{method: "POST", pattern: "/v1/user/password-reset", policy: public, limit: limitSensitive, handler: s.handleBeginPasswordReset},
		{method: "PUT", pattern: "/v1/user/password-reset", policy: public, limit: limitSensitive, handler: s.handleFinishPasswordReset},
		{method: "POST", pattern: "/v1/user/verify", policy: public, handler: s.handleVerify},
		{method: "GET", pattern: "/v1/user/identify", policy: userOnly, handler: s.handleIdentify},
		{method: "GET", pattern: "/v1/orgs", policy: userOnly, scope: scopeOrganizationGet, handler: s.handleListOrgs},

		// Team invitations addressed to the caller (invites.go; Wick's own
		// routes, docs/api.md, Team invitations).
		{method: "GET", pattern: "/v1/user/team-invites", policy: userOnly, handler: s.handleMyInvites},
		{method: "POST", pattern: "/v1/user/team-invites/accept", policy: userOnly, handler: s.handleAcceptInvite},
		{method: "DELETE", pattern: "/v1/user/team-invites/{p}", policy: userOnly, handler: s.handleDeclineInvite},

		// OAuth clients of a user (docs/particle-api.md#oauth-clients).
		{method: "GET", pattern: "/v1/clients", policy: userOnly, scope: scopeClientsList, handler: s.handleListClients},
		{method: "POST", pattern: "/v1/clients", policy: userOnly, scope: scopeClientsCreate, handler: s.handleCreateClient},
		{method: "PUT", pattern: "/v1/clients/{client}", policy: userOnly, scope: scopeClientsUpdate, handler: s.handleUpdateClient},
		{method: "DELETE", pattern: "/v1/clients/{client}", policy: userOnly, scope: scopeClientsRemove, handler: s.handleDeleteClient},

		// Products (docs/particle-api.md#products).
		{method: "GET", pattern: "/v1/user/products", policy: userOnly, scope: scopeProductsList, handler: s.handleListProducts},
		{method: "GET", pattern: "/v1/products", policy: userOnly, scope: scopeProductsList, handler: s.handleListProducts},
		{method: "POST", pattern: "/v1/user/products", policy: userOnly, handler: s.handleCreateProduct},
		{method: "GET", pattern: "/v1/orgs/{org}/products", policy: userOnly, scope: scopeProductsList, handler: s.handleOrgNotFound},
		{method: "POST", pattern: "/v1/orgs/{org}/products", policy: userOnly, handler: s.handleOrgNotFound},
		{method: "GET", pattern: "/v1/products/{p}", policy: team, scope: scopeProductsGet, handler: s.handleGetProduct},

		// OAuth clients of a product (docs/particle-api.md#oauth-clients).
		{method: "GET", pattern: "/v1/products/{p}/clients", policy: team, scope: scopeClientsList, handler: s.handleListClients},
		{method: "POST", pattern: "/v1/products/{p}/clients", policy: team, scope: scopeClientsCreate, handler: s.handleCreateClient},
		{method: "PUT", pattern: "/v1/products/{p}/clients/{client}", policy: team, scope: scopeClientsUpdate, handler: s.handleUpdateClient},
		{method: "DELETE", pattern: "/v1/products/{p}/clients/{client}", policy: team, scope: scopeClientsRemove, handler: s.handleDeleteClient},

		// Team (docs/particle-api.md#teams).
		{method: "GET", pattern: "/v1/products/{p}/team", policy: team, scope: scopeTeamList, handler: s.handleListTeam},
		{method: "GET", pattern: "/v1/products/{p}/team/invites", policy: team, scope: scopeTeamList, handler: s.handleListInvites},
		{method: "POST", pattern: "/v1/products/{p}/team", policy: team, scope: scopeTeamInvite, handler: s.handleInviteTeam},
		{method: "DELETE", pattern: "/v1/products/{p}/team/{username}", policy: team, scope: scopeTeamRemove, handler: s.handleRemoveTeam},

		// Customers (docs/particle-api.md#customers).
		{method: "POST", pattern: "/v1/products/{p}/customers", policy: customerCreate, scope: scopeCustomersCreate, handler: s.handleCreateCustomer},
		{method: "GET", pattern: "/v1/products/{p}/customers", policy: team, scope: scopeCustomersList, handler: s.handleListCustomers},
		{method: "PUT", pattern: "/v1/products/{p}/customers/{email}", policy: team, scope: scopeCustomersUpdate, handler: s.handleUpdateCustomer},
		{method: "DELETE", pattern: "/v1/products/{p}/customers/{email}", policy: team, scope: scopeCustomersRemove, handler: s.handleDeleteCustomer},

		// Devices of the caller, user or customer
		// (docs/particle-api.md#devices). {id} is a device ID or name
		// (docs/particle-api.md#device-id-or-name); later device routes extend
		// /v1/devices/{id}/... and add literals such as /v1/devices/events,
		// which win.
		{method: "GET", pattern: "/v1/devices", policy: userOrCustomer, handler: s.handleListDevices},
		{method: "GET", pattern: "/v1/devices/{id}", policy: userOrCustomer, handler: s.handleGetDevice},
		{method: "PUT", pattern: "/v1/devices/{id}", policy: userOrCustomer, maxBody: s.firmwareBodyLimit(), handler: s.handleUpdateDevice},
		{method: "PUT", pattern: "/v1/devices/{id}/ping", policy: userOrCustomer, handler: s.handlePing},
		{method: "POST", pattern: "/v1/devices/{id}/{name}", policy: userOrCustomer, handler: s.handleCallFunction},
		{method: "GET", pattern: "/v1/devices/{id}/{name}", policy: userOrCustomer, handler: s.handleGetVariable},

		// Claim codes, claiming by ID, unclaiming
		// (docs/particle-api.md#claiming). The product claim route takes users
		// of the team, the product's customers and its product token; the
		// handler checks which.
		{method: "POST", pattern: "/v1/device_claims", policy: userOrCustomer, handler: s.handleCreateClaimCode},
		{method: "POST", pattern: "/v1/products/{p}/device_claims", policy: anyToken, handler: s.handleCreateClaimCode},
		{method: "POST", pattern: "/v1/devices", policy: userOrCustomer, handler: s.handleClaimDevice},
		{method: "DELETE", pattern: "/v1/devices/{id}", policy: userOrCustomer, handler: s.handleUnclaimDevice},

		// Devices of a product (docs/particle-api.md#devices; team and product
		// tokens; device IDs only).
		{method: "GET", pattern: "/v1/products/{p}/devices", policy: team, scope: scopeDevicesList, teamRead: true, handler: s.handleListProductDevices},
		{method: "POST", pattern: "/v1/products/{p}/devices", policy: team, scope: scopeDevicesImport, handler: s.handleImportProductDevices},
		{method: "GET", pattern: "/v1/products/{p}/devices/{id}", policy: team, scope: scopeDevicesGet, handler: s.handleGetProductDevice},
		{method: "PUT", pattern: "/v1/products/{p}/devices/{id}", policy: team, scope: scopeDevicesUpdate, maxBody: s.firmwareBodyLimit(), handler: s.handleUpdateDevice},
		{method: "DELETE", pattern: "/v1/products/{p}/devices/{id}", policy: team, scope: scopeDevicesRemove, handler: s.handleRemoveProductDevice},
		// Product firmware (docs/ota.md, firmware.go).
		{method: "GET", pattern: "/v1/products/{p}/firmware", policy: team, scope: scopeFirmwareList, handler: s.handleListProductFirmware},
		{method: "POST", pattern: "/v1/products/{p}/firmware", policy: team, scope: scopeFirmwareCreate, maxBody: s.firmwareBodyLimit(), handler: s.handleUploadProductFirmware},
		{method: "PUT", pattern: "/v1/products/{p}/firmware/release", policy: team, scope: scopeFirmwareRelease, handler: s.handleReleaseProductFirmware},
		{method: "GET", pattern: "/v1/products/{p}/firmware/{version}", policy: team, scope: scopeFirmwareGet, handler: s.handleGetProductFirmware},
		{method: "PUT", pattern: "/v1/products/{p}/firmware/{version}", policy: team, scope: scopeFirmwareUpdate, handler: s.handleUpdateProductFirmware},
		{method: "DELETE", pattern: "/v1/products/{p}/firmware/{version}", policy: team, scope: scopeFirmwareRemove, handler: s.handleDeleteProductFirmware},
		{method: "GET", pattern: "/v1/products/{p}/firmware/{version}/binary", policy: team, scope: scopeFirmwareBinary, handler: s.handleDownloadProductFirmware},
		{method: "DELETE", pattern: "/v1/products/{p}/devices/{id}/owner", policy: team, scope: scopeDevicesRemove, handler: s.handleRemoveProductDeviceOwner},
		{method: "PUT", pattern: "/v1/products/{p}/devices/{id}/ping", policy: team, scope: scopeDevicesPing, handler: s.handlePing},
		{method: "POST", pattern: "/v1/products/{p}/devices/{id}/{name}", policy: team, scope: scopeFunctionCall, handler: s.handleCallFunction},
		{method: "GET", pattern: "/v1/products/{p}/devices/{id}/{name}", policy: team, scope: scopeVariableGet, handler: s.handleGetVariable},

		// Device keys
		// (docs/particle-protocol.md#how-the-cloud-learns-a-device-key): users,
		// team members and product tokens; the handler refuses customers.
		{method: "POST", pattern: "/v1/provisioning/{id}", policy: anyToken, handler: s.handleProvision},

		// Publishing (events.go, docs/particle-api.md#publishing-events) and
		// event streams (sse.go, docs/particle-api.md#event-streams). The
		// {prefix...} catch-all is everything after /events/, decoded, and may
		// contain '/' (docs/particle-api.md#route-matching); the literal
		// "events" segments win over {id} and {name}.
		{method: "POST", pattern: "/v1/devices/events", policy: userOrCustomer, handler: s.handlePublish},
		{method: "POST", pattern: "/v1/products/{p}/events", policy: team, scope: scopeEventsSend, handler: s.handlePublish},
		{method: "GET", pattern: "/v1/events", policy: anyToken, handler: s.handleEventsNoPrefix},
		{method: "GET", pattern: "/v1/events/{prefix...}", policy: anyToken, handler: s.handlePublicEvents},
		{method: "GET", pattern: "/v1/devices/events", policy: userOrCustomer, handler: s.handleMyEvents},
		{method: "GET", pattern: "/v1/devices/events/{prefix...}", policy: userOrCustomer, handler: s.handleMyEvents},
		{method: "GET", pattern: "/v1/devices/{id}/events", policy: userOrCustomer, handler: s.handleDeviceEvents},
		{method: "GET", pattern: "/v1/devices/{id}/events/{prefix...}", policy: userOrCustomer, handler: s.handleDeviceEvents},
		{method: "GET", pattern: "/v1/products/{p}/events", policy: team, scope: scopeEventsGet, handler: s.handleProductEvents},
		{method: "GET", pattern: "/v1/products/{p}/events/{prefix...}", policy: team, scope: scopeEventsGet, handler: s.handleProductEvents},
		{method: "GET", pattern: "/v1/products/{p}/devices/{id}/events", policy: team, scope: scopeEventsGet, handler: s.handleProductDeviceEvents},
		{method: "GET", pattern: "/v1/products/{p}/devices/{id}/events/{prefix...}", policy: team, scope: scopeEventsGet, handler: s.handleProductDeviceEvents},

		// Legacy webhooks (docs/particle-api.md#the-legacy-webhook-api) and
		// integrations (docs/particle-api.md#the-integrations-api; webhooks.go,
		// integrations.go), of a user (sandbox) and of a product team;
		// .../deliveries is Wick's delivery log. Customers never reach them.
		{method: "POST", pattern: "/v1/webhooks", policy: userOnly, scope: scopeIntegrationsCreate, handler: s.handleCreateWebhook},
		{method: "GET", pattern: "/v1/webhooks", policy: userOnly, scope: scopeIntegrationsList, handler: s.handleListWebhooks},
		{method: "GET", pattern: "/v1/webhooks/{hook}", policy: userOnly, scope: scopeIntegrationsGet, handler: s.handleGetWebhook},
		{method: "DELETE", pattern: "/v1/webhooks/{hook}", policy: userOnly, scope: scopeIntegrationsRemove, handler: s.handleDeleteWebhook},
		{method: "GET", pattern: "/v1/webhooks/{hook}/deliveries", policy: userOnly, scope: scopeIntegrationsGet, handler: s.handleWebhookDeliveries},
		{method: "POST", pattern: "/v1/products/{p}/webhooks", policy: team, scope: scopeIntegrationsCreate, handler: s.handleCreateWebhook},
		{method: "GET", pattern: "/v1/products/{p}/webhooks", policy: team, scope: scopeIntegrationsList, handler: s.handleListWebhooks},
		{method: "GET", pattern: "/v1/products/{p}/webhooks/{hook}", policy: team, scope: scopeIntegrationsGet, handler: s.handleGetWebhook},
		{method: "DELETE", pattern: "/v1/products/{p}/webhooks/{hook}", policy: team, scope: scopeIntegrationsRemove, handler: s.handleDeleteWebhook},
		{method: "GET", pattern: "/v1/products/{p}/webhooks/{hook}/deliveries", policy: team, scope: scopeIntegrationsGet, handler: s.handleWebhookDeliveries},
		{method: "POST", pattern: "/v1/integrations", policy: userOnly, scope: scopeIntegrationsCreate, handler: s.handleCreateIntegration},
		{method: "GET", pattern: "/v1/integrations", policy: userOnly, scope: scopeIntegrationsList, handler: s.handleListIntegrations},
		{method: "GET", pattern: "/v1/integrations/{hook}", policy: userOnly, scope: scopeIntegrationsGet, handler: s.handleGetIntegration},
		{method: "PUT", pattern: "/v1/integrations/{hook}", policy: userOnly, scope: scopeIntegrationsUpdate, handler: s.handleUpdateIntegration},
		{method: "DELETE", pattern: "/v1/integrations/{hook}", policy: userOnly, scope: scopeIntegrationsRemove, handler: s.handleDeleteIntegration},
		{method: "POST", pattern: "/v1/integrations/{hook}/test", policy: userOnly, scope: scopeIntegrationsTest, handler: s.handleTestIntegration},
		{method: "GET", pattern: "/v1/integrations/{hook}/deliveries", policy: userOnly, scope: scopeIntegrationsGet, handler: s.handleIntegrationDeliveries},
		{method: "POST", pattern: "/v1/products/{p}/integrations", policy: team, scope: scopeIntegrationsCreate, handler: s.handleCreateIntegration},
		{method: "GET", pattern: "/v1/products/{p}/integrations", policy: team, scope: scopeIntegrationsList, handler: s.handleListIntegrations},
		{method: "GET", pattern: "/v1/products/{p}/integrations/{hook}", policy: team, scope: scopeIntegrationsGet, handler: s.handleGetIntegration},
		{method: "PUT", pattern: "/v1/products/{p}/integrations/{hook}", policy: team, scope: scopeIntegrationsUpdate, handler: s.handleUpdateIntegration},
		{method: "DELETE", pattern: "/v1/products/{p}/integrations/{hook}", policy: team, scope: scopeIntegrationsRemove, handler: s.handleDeleteIntegration},
		{method: "POST", pattern: "/v1/products/{p}/integrations/{hook}/test", policy: team, scope: scopeIntegrationsTest, handler: s.handleTestIntegration},
		{method: "GET", pattern: "/v1/products/{p}/integrations/{hook}/deliveries", policy: team, scope: scopeIntegrationsGet, handler: s.handleIntegrationDeliveries},
		// Organizations do not exist in Wick (as for /v1/orgs/{org}/products).
		{method: "GET", pattern: "/v1/orgs/{org}/integrations", policy: userOnly, scope: scopeIntegrationsList, handler: s.handleOrgNotFound},
		{method: "POST", pattern: "/v1/orgs/{org}/integrations", policy: userOnly, scope: scopeIntegrationsCreate, handler: s.handleOrgNotFound},
	}
}

// Routes lists every route of the API as "METHOD /pattern", in table
// order, for documentation and for tests that check coverage.
func Routes() []string {
	table := (&server{}).routes()
	out := make([]string, len(table))
	for i, rt := range table {
		out[i] = rt.method + " " + rt.pattern
	}
	return out
}
