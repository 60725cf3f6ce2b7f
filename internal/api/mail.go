package api

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/mail"
	"github.com/wick-cloud/wick/internal/store"
)

// Mailer sends one e-mail. *mail.Sender implements it.
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

const (
	// maxMailsInFlight bounds the e-mails being sent at once; beyond it a
	// message is dropped with a warning rather than queued without bound.
	maxMailsInFlight = 8
	// mailTimeout bounds one message, whatever the request does.
	mailTimeout = time.Minute
)

// sendMail sends m in the background, so that the answer neither waits
// for the relay nor, by its timing, tells whether a message was sent
// (a password reset answers the same for unknown addresses). Failures are
// logged with the recipient and what was sent, never the message body:
// it carries a credential.
func (s *server) sendMail(ctx context.Context, what string, m mail.Message) {
	if s.mail == nil {
		return
	}
	select {
	case s.mailSlots <- struct{}{}:
	default:
		s.log.LogAttrs(ctx, slog.LevelWarn, "api: too many e-mails in flight; dropped one",
			slog.String("mail", what), slog.String("to", m.To))
		return
	}
	go func() {
		defer func() { <-s.mailSlots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
		defer cancel()
		if err := s.mail.Send(ctx, m); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "api: e-mail not sent",
				slog.String("mail", what), slog.String("to", m.To), slog.Any("err", err))
			return
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "api: e-mail sent", slog.String("mail", what), slog.String("to", m.To))
	}()
}

// baseURL is the API's public base URL for links in e-mail.
func (s *server) baseURL(rq *request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if rq.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + rq.r.Host
}

// sendResetMail mails a password-reset token to its account's address.
func (s *server) sendResetMail(rq *request, username, token string) {
	base := s.baseURL(rq)
	s.sendMail(rq.ctx, "password-reset", mail.Message{
		To:      username,
		Subject: "Reset your password",
		Body: "Someone asked to reset the password of the account " + username + " on " + base + ".\n" +
			"If it was not you, ignore this message: the password stays as it is.\n\n" +
			"This reset token is valid for one hour and works once:\n\n    " + token + "\n\n" +
			"Set a new password with it:\n\n" +
			"    curl -X PUT " + base + "/v1/user/password-reset \\\n" +
			"      -d token=" + token + " -d password='a new password'\n",
	})
}

// sendInviteMail mails a team invitation and its secret to the invited
// address.
func (s *server) sendInviteMail(rq *request, inv *store.Invite, prod *store.Product, token string) {
	base := s.baseURL(rq)
	inviter := inv.InvitedBy
	if inviter == "" {
		inviter = "A team member"
	}
	s.sendMail(rq.ctx, "team-invite", mail.Message{
		To:      inv.Username,
		Subject: "Invitation to the team of " + oneLine(prod.Name),
		Body: inviter + " invited " + inv.Username + " to the team of the product \"" + oneLine(prod.Name) +
			"\" (" + prod.Slug + ") on " + base + ", as " + inv.Role + ".\n\n" +
			"To accept, log in as " + inv.Username + " (create the account first if you have none) and send\n" +
			"the invitation token within " + inviteDays(inv) + ":\n\n" +
			"    curl " + base + "/v1/user/team-invites/accept \\\n" +
			"      -H \"Authorization: Bearer $YOUR_ACCESS_TOKEN\" -d token=" + token + "\n\n" +
			"If you do not know this product, ignore this message: nothing happens until you accept.\n",
	})
}

// oneLine keeps a user-chosen name on one line of an e-mail.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// inviteDays says how long an invitation lasts, in days or hours.
func inviteDays(inv *store.Invite) string {
	d := inv.ExpiresAt.Sub(inv.CreatedAt).Round(time.Hour)
	if d >= 48*time.Hour {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
	}
	return strconv.FormatInt(int64(d/time.Hour), 10) + " hours"
}
