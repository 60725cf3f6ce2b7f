package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/server"
)

const teamUsage = `Usage: wick team invites (--product P | --user EMAIL) [--data DIR] [--db DSN]
       wick team accept PRODUCT EMAIL [--data DIR] [--db DSN]

invites lists the pending team invitations of a product, or those addressed
to EMAIL. accept makes EMAIL a member of PRODUCT (ID or slug) with the role
of its pending invitation: run it only after checking, outside Wick, that
the person asking owns the address.`

// teamCommand is `wick team`: team invitations for operators without
// e-mail (docs/operations.md, Without e-mail).
func teamCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "invites" && args[0] != "accept") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, teamUsage)
			return nil
		}
		fmt.Fprintln(stderr, teamUsage)
		return errUsage
	}
	cfg := config.Default()
	fs := flag.NewFlagSet("wick team "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, teamUsage)
	cfg.RegisterStorage(fs)
	product := fs.String("product", "", "product ID or slug (invites)")
	user := fs.String("user", "", "invited e-mail address (invites)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	rest, err := config.Parse(fs, args[1:], nil)
	if err != nil {
		return usageErr(err)
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch args[0] {
	case "invites":
		if len(rest) != 0 || (*product == "") == (*user == "") {
			fmt.Fprintln(stderr, teamUsage)
			return errUsage
		}
		if err := checkData(cfg, false, stderr); err != nil {
			return err
		}
		list, err := server.Invites(ctx, cfg, log, *product, *user)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no pending invitations")
		}
		for _, inv := range list {
			fmt.Fprintf(stdout, "product %d  %s  %s  invited by %s  expires %s\n", inv.ProductID, inv.Username, inv.Role,
				orDash(inv.InvitedBy), inv.ExpiresAt.UTC().Format("2006-01-02 15:04Z"))
		}
		return nil
	default: // accept
		if len(rest) != 2 {
			fmt.Fprintln(stderr, teamUsage)
			return errUsage
		}
		if err := checkData(cfg, false, stderr); err != nil {
			return err
		}
		m, err := server.AcceptInvite(ctx, cfg, log, rest[0], rest[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s joined the team of product %d as %s\n", m.Username, m.ProductID, m.Role)
		return nil
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const userPasswordUsage = "Usage: wick user password EMAIL --password-stdin [--data DIR] [--db DSN]"

// userPassword is `wick user password`: set a user's password (and revoke
// its tokens), the operator's password reset without e-mail.
func userPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("wick user password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, userPasswordUsage)
	cfg.RegisterStorage(fs)
	passwordStdin := fs.Bool("password-stdin", false, "read the new password from standard input (required)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	rest, err := config.Parse(fs, args, nil)
	if err != nil {
		return usageErr(err)
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, userPasswordUsage)
		return errUsage
	}
	password, err := readPassword("wick user password", *passwordStdin, stdin, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	if err := checkData(cfg, false, stderr); err != nil {
		return err
	}
	if err := server.SetPassword(context.Background(), cfg, log, rest[0], password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "password of %s set; its tokens are revoked\n", strings.ToLower(strings.TrimSpace(rest[0])))
	return nil
}
