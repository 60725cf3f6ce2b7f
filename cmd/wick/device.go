package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/server"
	"github.com/wick-cloud/wick/protocol"
	"github.com/wick-cloud/wick/sdk/cloud"
)

const deviceUsage = `Usage: wick device provision ID --key FILE [--product N] [--data DIR] [--db DSN] [--init]
       wick device provision ID --key FILE [--product N] --api URL --token TOKEN

With --api the key goes to a running server through its REST API
(POST /v1/provisioning/ID, as particle keys send does) with TOKEN's rights,
instead of into the data directory.`

// maxKeyFile bounds a key file read by `wick device provision`; public
// keys are a few hundred bytes.
const maxKeyFile = 64 << 10

// deviceCommand runs `wick device provision ID --key FILE`: it stores a
// device's public key (PEM "PUBLIC KEY" or "RSA PUBLIC KEY", DER, or base64
// DER; RSA-1024/2048 or EC P-256) directly in the store, for devices
// keyed by an operator rather than through `particle keys send`. --key -
// reads the key from stdin. Given the device's private key file (what
// `openssl genrsa` or `particle keys save` write), it stores the public
// half; the private key never leaves this process.
func deviceCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "provision" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, deviceUsage)
			return nil
		}
		fmt.Fprintln(stderr, deviceUsage)
		return errUsage
	}
	cfg := config.Default()
	fs := flag.NewFlagSet("wick device provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, deviceUsage)
	cfg.RegisterStorage(fs)
	initData := registerInit(fs)
	keyFile := fs.String("key", "", `the device's key file: public or private (the public half is derived), PEM or DER, RSA or EC P-256; "-" reads standard input (required)`)
	product := fs.Int64("product", 0, "ID of the product to put the device in (0: keep its product)")
	apiURL := fs.String("api", "", "provision through the REST API of the server at this URL instead of the data directory")
	token := fs.String("token", "", "access token for --api (a user on the product's team for --product)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	rest, err := config.Parse(fs, args[1:], nil)
	if err != nil {
		return usageErr(err)
	}
	if len(rest) != 1 || *keyFile == "" || (*apiURL != "" && *token == "") {
		fmt.Fprintln(stderr, deviceUsage)
		return errUsage
	}
	key, err := readKeyFile(*keyFile, stdin)
	if err != nil {
		return err
	}
	key, derived, err := publicHalf(key)
	if err != nil {
		return err
	}
	if *apiURL != "" {
		return provisionRemote(*apiURL, *token, rest[0], key, *product, derived, stdout)
	}
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	if err := checkData(cfg, *initData, stderr); err != nil {
		return err
	}
	d, err := server.ProvisionDevice(context.Background(), cfg, log, rest[0], key, *product)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "provisioned device %s (%s key", d.ID, d.KeyAlgorithm)
	if derived {
		fmt.Fprint(stdout, ", public half of the private key file")
	}
	if d.ProductID != 0 {
		fmt.Fprintf(stdout, ", product %d", d.ProductID)
	}
	fmt.Fprintln(stdout, ")")
	return nil
}

// provisionRemote is `wick device provision --api`: the key goes to the
// server at apiURL through sdk/cloud, like `particle keys send`
// (docs/sdk-cloud.md#wicks-own-commands).
func provisionRemote(apiURL, token, id string, key []byte, product int64, derived bool, stdout io.Writer) error {
	pemKey := key
	if k, err := protocol.ParsePublicKey(key); err == nil {
		if pemKey, err = protocol.MarshalPublicKeyPEM(k); err != nil {
			return fmt.Errorf("read key: %w", err)
		}
	}
	o := cloud.ProvisionOptions{Filename: "wick-device-provision"}
	if product != 0 {
		o.Product = strconv.FormatInt(product, 10)
	}
	c := cloud.New(apiURL, token)
	c.UserAgent = "wick/" + version
	c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	if err := c.ProvisionDeviceWith(ctx, id, pemKey, o); err != nil {
		return fmt.Errorf("device provision: %w", err)
	}
	label := "key"
	if alg := cloud.KeyAlgorithm(pemKey); alg != "" {
		label = alg + " key"
	}
	fmt.Fprintf(stdout, "provisioned device %s through %s (%s", strings.ToLower(id), strings.TrimRight(apiURL, "/"), label)
	if derived {
		fmt.Fprint(stdout, ", public half of the private key file")
	}
	if product != 0 {
		fmt.Fprintf(stdout, ", product %d", product)
	}
	fmt.Fprintln(stdout, ")")
	return nil
}

// readKeyFile reads at most maxKeyFile bytes of a key from path, or from
// stdin when path is "-".
func readKeyFile(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("read key %s: larger than %d bytes: not a public key", path, maxKeyFile)
	}
	return b, nil
}

// publicHalf returns key unchanged when it is not a private key, and the
// DER public key of a private key (PEM or DER: PKCS#1, PKCS#8, SEC 1)
// with derived set. Only the public key is stored, as `particle keys send`
// would send it.
func publicHalf(key []byte) (pub []byte, derived bool, err error) {
	priv, perr := protocol.ParsePrivateKey(key)
	if perr != nil {
		if bytes.Contains(key, []byte("PRIVATE KEY-----")) {
			return nil, false, fmt.Errorf("read key: unreadable private key: %w", perr)
		}
		return key, false, nil
	}
	der, err := protocol.MarshalPublicKeyDER(priv.Public())
	if err != nil {
		return nil, false, fmt.Errorf("read key: %w", err)
	}
	return der, true, nil
}
