// Package api is Wick's REST API: the Particle-compatible HTTP surface of
// ../shared/spec/cloud-api.md (sections 1–5 so far: conventions, the OAuth
// token endpoint and access tokens, users, OAuth clients, products, teams
// and customers).
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
// # Decisions the spec left open
//
//   - Sign-up (POST /v1/users) is closed unless Config.Signup is set; when
//     closed it answers 403 {"ok":false,"error":"Sign-up is disabled"}.
//     Passwords must be at least Config.MinPasswordLength (8) bytes.
//     Accounts are created verified: Wick sends no e-mail, so
//     POST /v1/user/verify only checks that a token was given.
//   - Password resets send no e-mail either: the reset token is logged at
//     Info level ("password reset requested") for an operator to deliver.
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
//     scope it holds; others answer 400 "unauthorized" as in spec §1.3.
//   - API users are created as accounts named
//     "<slug of friendly_name>+<8 hex>@" + APIUserDomain.
//   - Rate limits use fixed windows per client IP (IPv6 per /64). The
//     DELETE /v1/user and password-reset routes share one "sensitive"
//     window. A /oauth/token answer of mfa_required is neither a failure
//     nor a success for the lockout count.
package api
