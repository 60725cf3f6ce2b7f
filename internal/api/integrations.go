package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/wick-cloud/wick/internal/store"
)

// handleCreateIntegration is POST /v1/integrations and
// /v1/products/{p}/integrations (docs/particle-api.md#the-integrations-api):
// the fields of a webhook plus integration_type (default "Webhook"; other types
// are stored opaquely and never delivered by Wick). 201 with the integration,
// "ok":true and its URL as "hookUrl" and "integrationUrl".
func (s *server) handleCreateIntegration(rq *request) error {
	h, err := s.saveNewHook(rq, true)
	if err != nil {
		return err
	}
	out, err := s.hookView(h)
	if err != nil {
		return err
	}
	out["ok"] = true
	u := s.hookURL(rq, "integrations", h.ID)
	out["hookUrl"], out["integrationUrl"] = u, u
	noStore(rq.w)
	return writeJSON(rq.w, http.StatusCreated, out)
}

// handleListIntegrations is GET /v1/integrations and the product variant:
// a bare array of every integration of the owner, oldest first.
func (s *server) handleListIntegrations(rq *request) error {
	hooks, err := s.ownerHooks(rq)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(hooks))
	for i := range hooks {
		if out[i], err = s.hookView(&hooks[i]); err != nil {
			return err
		}
	}
	noStore(rq.w)
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleGetIntegration is GET /v1/integrations/{hook} and the product
// variant: {"integration":{..., "logs":[the 10 newest delivery records]}}.
func (s *server) handleGetIntegration(rq *request) error {
	h, err := s.findHook(rq, false, errIntegrationNotFound)
	if err != nil {
		return err
	}
	log, err := s.store.WebhookDeliveries(rq.ctx, h.ID, integrationLogs)
	if err != nil {
		return err
	}
	out, err := s.hookView(h)
	if err != nil {
		return err
	}
	out["logs"] = deliveriesJSON(log)
	noStore(rq.w)
	return writeJSON(rq.w, http.StatusOK, map[string]any{"integration": out})
}

// handleUpdateIntegration is PUT /v1/integrations/{hook} and the product
// variant: the request replaces the whole configuration (no merge), except
// that event, integration_type and signingSecret keep their stored values
// when absent (particle-api-js's editIntegration omits an unchanged event;
// the secret is never shown, so a client cannot send it back). 200
// {"integration":{...}}.
func (s *server) handleUpdateIntegration(rq *request) error {
	prev, err := s.findHook(rq, false, errIntegrationNotFound)
	if err != nil {
		return err
	}
	in, err := parseHookInput(rq.params, true, prev.IntegrationType)
	if err != nil {
		return err
	}
	h, err := s.buildHook(rq, in, prev)
	if err != nil {
		return err
	}
	if err := s.store.UpdateWebhook(rq.ctx, h); err != nil {
		return fmt.Errorf("api: update webhook: %w", err)
	}
	s.hooksChanged(rq, h.ID)
	out, err := s.hookView(h)
	if err != nil {
		return err
	}
	noStore(rq.w)
	return writeJSON(rq.w, http.StatusOK, map[string]any{"integration": out})
}

// handleDeleteIntegration is DELETE /v1/integrations/{hook} and the
// product variant: 204.
func (s *server) handleDeleteIntegration(rq *request) error {
	if err := s.deleteHook(rq, false, errIntegrationNotFound); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleTestIntegration is POST /v1/integrations/{hook}/test and the
// product variant: the engine sends a synthetic test event now. 200
// {"pass":bool,"data":<response or null>,"error":<string, on failure>};
// 503 when no delivery engine runs.
func (s *server) handleTestIntegration(rq *request) error {
	h, err := s.findHook(rq, false, errIntegrationNotFound)
	if err != nil {
		return err
	}
	if h.IntegrationType != store.IntegrationWebhook {
		return errorf(http.StatusBadRequest, "Only integrations of type Webhook can be tested")
	}
	if s.webhooks == nil {
		return errWebhooksOff
	}
	ctx, cancel := context.WithTimeout(rq.ctx, testTimeout)
	defer cancel()
	d, err := s.webhooks.TestWebhook(ctx, h)
	out := map[string]any{"pass": false, "data": nil}
	switch {
	case err != nil:
		out["error"] = err.Error()
	default:
		if d.Response != "" {
			out["data"] = d.Response
		}
		if d.Error != "" {
			out["error"] = d.Error
		} else if d.Status < 200 || d.Status > 299 {
			out["error"] = fmt.Sprintf("error status %d", d.Status)
		} else {
			out["pass"] = true
		}
	}
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleIntegrationDeliveries is GET /v1/integrations/{hook}/deliveries
// and the product variant (a Wick extension; see hookDeliveries).
func (s *server) handleIntegrationDeliveries(rq *request) error {
	return s.hookDeliveries(rq, false, errIntegrationNotFound)
}
