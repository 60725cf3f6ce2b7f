// Command wick is the Wick device cloud: one binary that serves the
// Particle-compatible REST API and device gateway (`wick serve`) and
// administers its data (`wick user ...`).
//
// Every flag also reads an environment variable: --foo-bar reads
// WICK_FOO_BAR. Run `wick help` for the subcommands.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `wick — a self-hosted, Particle-compatible device cloud

Usage:
  wick serve [flags]                          start the server (embedded defaults, no outside services)
  wick user create EMAIL --password-stdin     create a developer account
  wick user password EMAIL --password-stdin   set a user's password (no e-mail needed)
  wick team invites|accept ...                team invitations without e-mail
  wick device provision ID --key FILE         register a device's key (public or private key file,
                                              PEM or DER; only the public half is stored; with
                                              --api URL --token T through a running server's API)
  wick sim --server HOST:PORT (--server-key FILE | --data DIR) [--count N] [--api URL --token T]
                                              run virtual devices (demo and load test)
  wick bench events|calls|list [--devices N] [--duration D]
                                              measure throughput and latency end to end
  wick keys server --host H [--port P] --out FILE
                                              write the server key blob a device stores
                                              (the file "particle keys server" flashes)
  wick version                                print the version, commit and Go release
  wick help [COMMAND]                         show help

Every flag also reads an environment variable: --http reads WICK_HTTP,
--data reads WICK_DATA, --token-rate reads WICK_TOKEN_RATE, and so on.
The admin commands (user, team, device, keys) work on the data of --data and
--db (default ./wick-data, as for wick serve), say which, and refuse to
create a new installation (user create, device provision and keys server
do with --init).
Run "wick COMMAND -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "user":
		err = user(args[1:], stdin, stdout, stderr)
	case "team":
		err = teamCommand(args[1:], stdout, stderr)
	case "keys":
		err = keys(args[1:], stdout, stderr)
	case "device":
		err = deviceCommand(args[1:], stdin, stdout, stderr)
	case "sim":
		err = simCommand(args[1:], stdout, stderr)
	case "bench":
		err = benchCommand(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprint(stdout, versionLine(version, buildInfo()))
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run([]string{args[1], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "wick: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "wick:", err)
		return 1
	}
}

// errUsage marks a command-line mistake already explained to the user.
var errUsage = errors.New("usage")

func serve(args []string, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("wick serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, serveUsage)
	cfg.Register(fs)
	rest, err := config.Parse(fs, args, nil)
	if err != nil {
		return usageErr(err)
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "wick serve: unexpected argument %q\n", rest[0])
		return errUsage
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func user(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "password" {
		return userPassword(args[1:], stdin, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, userUsage)
			return nil
		}
		fmt.Fprintln(stderr, userUsage)
		return errUsage
	}
	cfg := config.Default()
	fs := flag.NewFlagSet("wick user create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, userUsage)
	cfg.RegisterStorage(fs)
	initData := registerInit(fs)
	passwordStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	rest, err := config.Parse(fs, args[1:], nil)
	if err != nil {
		return usageErr(err)
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, userUsage)
		return errUsage
	}
	password, err := readPassword("wick user create", *passwordStdin, stdin, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	if err := checkData(cfg, *initData, stderr); err != nil {
		return err
	}
	u, err := server.CreateUser(context.Background(), cfg, log, rest[0], password)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (id %s)\n", u.Username, u.ID)
	return nil
}

const userUsage = "Usage: wick user create EMAIL --password-stdin [--data DIR] [--db DSN] [--init]\n" +
	"       wick user password EMAIL --password-stdin [--data DIR] [--db DSN]"

const serveUsage = `Usage: wick serve [flags]

Serves the REST API (--http) and the device gateway (--device-tcp), both on
loopback by default, with the data in --data (created on first start and
locked while the server runs).`

const keysUsage = "Usage: wick keys server --host HOST [--port PORT] [--protocol tcp|udp | --udp] --out FILE [--data DIR] [--init]"

func keys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "server" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, keysUsage)
			return nil
		}
		fmt.Fprintln(stderr, keysUsage)
		return errUsage
	}
	cfg := config.Default()
	fs := flag.NewFlagSet("wick keys server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, keysUsage)
	cfg.RegisterStorage(fs)
	initData := registerInit(fs)
	host := fs.String("host", "", "the server's IPv4 address or domain name, as devices reach it (required)")
	port := fs.Uint("port", 0, "the server's device port (0: the transport's default, 5683 TCP / 5684 UDP)")
	proto := fs.String("protocol", "tcp", "transport: tcp (Gen 2, RSA key) or udp (Gen 3, EC key)")
	udp := fs.Bool("udp", false, "the same as --protocol udp")
	out := fs.String("out", "", "file to write (required)")
	rest, err := config.Parse(fs, args[1:], nil)
	if err != nil {
		return usageErr(err)
	}
	if *udp {
		*proto = "udp"
	}
	if len(rest) > 0 || *host == "" || *out == "" || *port > 65535 {
		fmt.Fprintln(stderr, keysUsage)
		return errUsage
	}
	if err := checkData(cfg, *initData, stderr); err != nil {
		return err
	}
	blob, err := server.ServerKeyBlob(cfg, *proto, *host, uint16(*port))
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, blob, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes, %s, %s:%d)\n", *out, len(blob), *proto, *host, *port)
	return nil
}

// setUsage makes fs print usage and then its flags on -h and on a flag
// mistake.
func setUsage(fs *flag.FlagSet, usage string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
}

// registerInit binds --init, with which an admin command may create a new
// data directory and database.
func registerInit(fs *flag.FlagSet) *bool {
	return fs.Bool("init", false, "create the data directory and database if they do not exist (default: refuse, so that a wrong --data is noticed)")
}

// checkData tells the user which data an admin command works on and,
// unless initData, refuses to create a new installation.
func checkData(cfg config.Serve, initData bool, stderr io.Writer) error {
	w, err := server.Locate(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wick: using %s\n", w)
	if initData {
		return nil
	}
	return server.RequireExisting(cfg)
}

// usageErr turns a flag parsing error (already printed by the FlagSet) into
// errUsage, keeping -h as a success.
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if strings.HasPrefix(err.Error(), "config:") {
		return err
	}
	return errUsage
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}

// readPassword reads one line from stdin as the password of command cmd;
// --password-stdin must be given, since passwords never come from the
// command line.
func readPassword(cmd string, fromStdin bool, stdin io.Reader, stderr io.Writer) (string, error) {
	if !fromStdin {
		fmt.Fprintln(stderr, cmd+": --password-stdin is required (passwords are never taken from the command line)")
		return "", errUsage
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
