// Package netguard decides which network destinations Wick may send
// outbound requests (webhooks) to, and enforces it.
//
// Two layers work together. CheckURL is a static check of a configured
// URL, run when a webhook is created so the user gets an early 400; it is
// lenient wherever the URL holds a mustache template ({{...}}), because
// the value is known only at delivery. The connect-time layer is the one
// that guarantees safety: Transport dials through Control, which applies
// CheckAddr to the address actually being connected after DNS
// resolution, on every connection attempt, so DNS rebinding, templated
// hosts and redirects to internal addresses are all refused there.
// CheckRedirect adds a redirect limit and an early, clearer error.
//
// A delivery engine builds its client like this:
//
//	client := &http.Client{
//		Transport:     policy.Transport(!rejectUnauthorized),
//		CheckRedirect: policy.CheckRedirect,
//	}
//
// The zero Policy is strict: loopback, private and other non-global
// ranges are refused. AllowPrivate (the --webhook-allow-private flag)
// permits them; link-local, cloud-metadata, unspecified, multicast and
// broadcast destinations are refused always. See docs/webhooks.md,
// "Outbound safety", for the full list and the reasons.
//
// The package imports only the standard library.
package netguard
