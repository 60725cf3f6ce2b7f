// Package api is Wick's REST API: the Particle-compatible HTTP surface
// described in docs/particle-api.md (conventions, the OAuth token endpoint
// and access tokens, users, OAuth clients, products, teams, customers,
// claiming, devices, events with their SSE streams, and webhooks and
// integrations). docs/api.md records what Wick decided where Particle's
// behaviour is open; the list below repeats it next to the code.
//
// # Structure
//
// New builds one http.Handler. Every request goes through the same steps
// (server.go): CORS headers, the per-IP global rate limit, OPTIONS
// preflight, routing (router.go; literal segments win over parameters),
// the route's own rate limit, parameter decoding (params.go: query plus a
// form, JSON or multipart body, with bracket notation), credential checks
// by the route's access policy (authz.go), and finally the handler. The one
// table of routes, with each route's policy and API-user scope, is in
// routes.go.
//
// Handlers return error; respond.go renders every error: *auth.Error in the
// OAuth shape {"error","error_description"}, *Error in the legacy shapes
// {"ok":false,"error"} or {"ok":false,"errors":[...]}, store.ErrNotFound as
// 404, store.ErrConflict as 409, and anything else as a 500 whose cause is
// logged and never sent. Every non-204 response is JSON.
//
// # Decisions Particle leaves open
//
//   - Sign-up (POST /v1/users) is closed unless Config.Signup is set; when
//     closed it answers 403 {"ok":false,"error":"Sign-up is disabled"}.
//     Passwords must be at least Config.MinPasswordLength (8) bytes.
//     Accounts are created verified: Wick verifies no address, so
//     POST /v1/user/verify only checks that a token was given.
//   - Password-reset tokens are mailed when Deps.Mail is set, and
//     otherwise reach nobody; no credential is ever logged (docs/api.md,
//     Password reset).
//   - A team invitation (POST /v1/products/{p}/team with a username) is
//     pending and grants nothing until the invited address accepts it
//     with its token while logged in (invites.go; docs/api.md, Team
//     invitations).
//   - GET /v1/access_tokens cannot show token values, which are stored only
//     as SHA-256 hashes: "token" holds the first 12 hex characters of the
//     hash, so a holder can match it against sha256(token).
//   - DELETE /v1/access_tokens/:token needs no credentials (particle-cli
//     sends none); possession of the token is the proof. Basic user
//     credentials sent with it must be right (401 "Bad password" if not).
//   - invalidate_tokens (PUT /v1/user, POST /v1/user/mfa-enable) revokes
//     every token of the user except the one making the request.
//   - A customer token may call GET /v1/user (the user object shape, for
//     the customer: username is the customer's e-mail, no_password tells a
//     shadow customer), GET and DELETE /v1/access_tokens/current and
//     DELETE /v1/access_tokens (its own tokens). Product and team routes
//     answer it 403.
//   - A product bearer token manages its own product only; user routes
//     answer it 403.
//   - A user token with a scope (an API user) may call only routes whose
//     scope it holds; others answer 400 "unauthorized" as
//     docs/particle-api.md#credentials says.
//   - API users are created as accounts named
//     "<slug of friendly_name>+<8 hex>@" + APIUserDomain.
//   - Rate limits use fixed windows per client IP (IPv6 per /64). The
//     DELETE /v1/user and password-reset routes share one "sensitive"
//     window. Wrong credentials are counted by auth (auth.Limits) per
//     client IP and per account on every route that checks one; the
//     client IP reaches auth through the request context
//     (auth.WithClientAddr). Behind trusted proxies the client IP is the
//     rightmost X-Forwarded-For hop that is not a trusted proxy
//     (docs/security.md, Behind a proxy).
//
// # Devices and claiming
//
// See docs/particle-api.md#claiming and docs/particle-api.md#devices.
//
//   - Device routes under /v1/devices/{id} take a device ID (any case) or
//     a name (any case) among the caller's own devices; users own what is
//     claimed to them, customers likewise. Product routes
//     (/v1/products/{p}/devices/{id}) take IDs only, of devices in that
//     product, for its team and its product token (404 "device not found"
//     otherwise); customers use the /v1/devices routes. API users need the
//     devices:* scopes on product routes and are refused on user routes.
//   - Claim codes are 63 characters of the base64 alphabet, stored only as
//     auth.HashToken(code), valid 24 hours. With iccid (or imei) the code is
//     that value, and a newer request for the same SIM replaces the pending
//     code. A code made on a product route moves the device into the
//     product; a product token's code claims it to nobody. A code claims
//     one device; a refused claim leaves it valid (docs/api.md, Claim
//     codes).
//   - Claiming gives a device without a name a generated one, unique for
//     its owner; a named device keeps its name (docs/api.md, Device
//     names). last_app is null in device objects and coreInfo alike.
//   - Claiming by ID does not require the device to be online. A customer
//     claims only unowned devices of its own product; a user claims an
//     unowned product device only when on that product's team (otherwise
//     "That belongs to someone else."). request_transfer answers a random
//     transfer_id and records nothing but a log line.
//   - Function calls and variable reads check the stored describe first
//     (404 for an undescribed name, matched case-sensitively), then the
//     argument limit of the device's Device OS release (63 bytes before
//     0.8.0, 622 before 3.0, 864 on Gen 2, else 1024), then the stored
//     online state (400 "Device is offline") before calling. A NaN or
//     infinite double reads as null in JSON.
//   - Device names are 1–63 characters of letters, digits, '_' and '-',
//     never 24 hex characters and never "events"; unique per owner,
//     ignoring case (400 on a clash).
//   - PUT on a device validates every key before acting, sends the signal
//     before storing, and merges the answers. Product firmware locks
//     (desired_firmware_version other than null), groups and OTA flashing
//     answer 400: Wick hosts no product firmware.
//   - POST /v1/products/{p}/devices creates unknown device IDs (keyless,
//     in the product), approves quarantined or denied ones, refuses devices
//     of other products, of customers, or that reported another platform
//     (invalidDeviceIds), and devices of users off the team
//     (nonmemberDeviceIds). protectedDeviceIds is always empty.
//   - Removing a device from a product unclaims it from a customer and
//     clears its development flag; a user owner keeps it. {"deny":true}
//     keeps it in the product, denied.
//   - After any change of owner or product the device's session is asked
//     to reload (DeviceCaller.Reload); a failure there is only logged.
//
// # Events and streams
//
// See docs/particle-api.md#events.
//
//   - POST /v1/devices/events (users, customers) and POST
//     /v1/products/{p}/events (team, product token; API users need
//     events:send) publish with coreid "api", PublishedAt the request time,
//     and the caller as owner: a user's UserID; a customer's CustomerID
//     and its ProductID (so its product team sees it); on the product
//     route the product alone. name: 1–64 printable ASCII bytes, not
//     starting with "spark" or "particle" in any case; data at most
//     Config.MaxEventData (1024) bytes, a JSON object or array given as
//     data is stored as its JSON text; private defaults to true, and
//     private=false makes the event public (visible by prefix on
//     /v1/events to everyone); ttl defaults to 60. Each access token may
//     publish a burst of Config.PublishBurst (4), refilled one per
//     Config.PublishInterval (1 s); beyond it 429 with Retry-After.
//   - Streams (sse.go): /v1/events/{prefix...} (any token: the caller's
//     own events plus everyone's public ones), /v1/devices/events (the
//     user's or customer's), /v1/devices/{id}/events (one of the caller's
//     devices by ID or name; the filter also keeps the caller as owner),
//     /v1/products/{p}/events and /v1/products/{p}/devices/{id}/events
//     (team and product token; API users need events:get; product streams
//     add userid, version, public and productID to the data). The prefix
//     is everything after /events/, percent-decoded, and may contain '/'.
//   - A stream is admitted, subscribed and answered 200 with ":ok" flushed
//     at once; failures before that are JSON (429 for the per-IP limits
//     Config.SSEOpenRate per SSEOpenWindow and SSEMaxConnsPerIP, counted
//     after authentication; Retry-After is the window's rest, or 10 s for
//     too many open streams). Every event carries "id: <bus ID>". After
//     Config.SSEKeepAlive (9 s) of silence a ":" comment is sent. Each
//     write has its own deadline (Config.SSEWriteTimeout); the server's
//     WriteTimeout is cleared. A stream ends when the client goes away,
//     the bus closes, or CloseStreams is called (register it with
//     http.Server.RegisterOnShutdown), and within seconds when its access
//     ends: token revoked or expired, holder off the team (streamwatch.go).
//   - Last-Event-ID (header, else the lastEventId or last_event_id query
//     parameter) replays the missed events of the bus's window (at most
//     Config.SSEReplayMax, the newest) and continues live without gap or
//     duplicate. When events after that ID may be missing (the replay hit
//     SSEReplayMax, or, with JetStream, the ID is older than the window),
//     the stream first says so in a comment, then replays what the window
//     still holds. An ID that is not a number is ignored.
//   - A slow client loses events only for itself: its bus buffer
//     (Config.SSEBuffer, 256 events) drops when full; the stream then
//     writes ": N events dropped: this stream is reading too slowly" before
//     its next event and goes on. Drops are counted in StreamStats and
//     logged once per stream.
//
// # Webhooks and integrations
//
// See docs/particle-api.md#webhooks and docs/webhooks.md.
//
//   - /v1/webhooks and /v1/integrations (a user's own hooks) and their
//     /v1/products/{p}/... variants (the team and the product token) are
//     one store (webhooks.go, integrations.go); the legacy routes see only
//     integration_type "Webhook". Customers are refused; API users need
//     the integrations:list, :get, :create, :update, :remove or :test
//     scope. Another owner's hook is 404 ("Webhook not found" or
//     "Integration not found").
//   - Legacy DELETE answers 200 {"ok":true} (particle-cli waits for ok),
//     the integrations DELETE 204. PUT replaces the configuration, but an
//     absent event, integration_type or signingSecret keeps its value.
//   - Validation: event 1–64 bytes; url required, at most 2 KiB, checked
//     by netguard (Config.WebhookAllowPrivate); requestType GET, POST, PUT
//     or DELETE (default POST); form, json and body mutually exclusive;
//     templates at most 16 KiB together; at most 50 headers; at most
//     Config.MaxWebhooks (100) hooks per user sandbox or product. A device
//     filter is an ID, or a user's own device name (stored as its ID).
//     Other integration types keep their fields opaquely in Settings.Extra
//     and are never delivered.
//   - signingSecret (16–256 bytes, a Wick extension) is sealed with
//     auth.Service.SealSecret for auth.PurposeWebhookSigning + the hook ID
//     and never shown: hooks show "signed". .../deliveries (a Wick
//     extension) shows the newest delivery-log entries.
//   - Changes are reported to Deps.Webhooks (WebhookRunner), which also
//     runs POST .../test; without one the test route answers 503.
package api
