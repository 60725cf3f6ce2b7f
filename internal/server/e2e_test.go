package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
)

// buildWick compiles cmd/wick into dir and returns the binary's path.
func buildWick(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "wick")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wick")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEndToEndSim is issue 3's proof: a Wick server and `wick sim --count
// 50` in another process; all 50 devices come online (spark/status
// online), a function call and variable reads through the gateway return
// the simulated values, and after the simulator is killed with SIGKILL all
// 50 go offline within the keep-alive window, each with spark/status
// offline.
func TestEndToEndSim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wick binary; skipped with -short")
	}
	const count = 50
	dir := t.TempDir()
	bin := buildWick(t, dir)

	cfg := testConfig(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := CreateUser(ctx, cfg, log, "maker@example.com", "a-long-password"); err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-srv.Ready()
	api := "http://" + srv.HTTPAddr().String()

	// A token for the maker, through the API as a client would get one.
	resp, err := http.PostForm(api+"/oauth/token", url.Values{"grant_type": {"password"},
		"username": {"maker@example.com"}, "password": {"a-long-password"}, "client_id": {"particle"}, "client_secret": {"particle"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	maker, err := srv.store.UserByUsername(ctx, "maker@example.com")
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("login: %v %q", err, tok.AccessToken)
	}

	status, err := srv.bus.Subscribe(bus.Filter{UserID: maker.ID, NamePrefix: "spark/status"}, 4*count)
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()

	sim := exec.Command(bin, "sim", "--server", srv.DeviceTCPAddr().String(), "--data", cfg.Data,
		"--api", api, "--token", tok.AccessToken, "--count", fmt.Sprint(count), "--id-prefix", "e2e",
		"--keys-dir", filepath.Join(dir, "keys"), "--log-level", "error", "--progress", "0")
	var simOut strings.Builder
	sim.Stdout, sim.Stderr = &simOut, &simOut
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			sim.Process.Kill()
			sim.Wait()
		}
	}()

	// All devices online, each announced once. The wait fails when no
	// further device is announced for timeout: under -race on a loaded
	// machine 50 devices can take longer than that in all (18 of 50 in
	// 90 s at load 39) while they keep coming.
	waitStatus := func(want string, timeout time.Duration) map[string]bool {
		seen := map[string]bool{}
		stall := time.NewTimer(timeout)
		defer stall.Stop()
		for len(seen) < count {
			select {
			case ev := <-status.Events():
				if ev.Data == want && !seen[ev.DeviceID] {
					seen[ev.DeviceID] = true
					stall.Reset(timeout)
				}
			case <-stall.C:
				t.Fatalf("%d of %d devices announced spark/status %s, none for %s\nsim output:\n%s", len(seen), count, want, timeout, simOut.String())
			}
		}
		return seen
	}
	online := waitStatus("online", 90*time.Second)
	devs, err := srv.store.DevicesByOwner(ctx, maker.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != count {
		t.Fatalf("maker owns %d devices; want %d", len(devs), count)
	}
	for _, d := range devs {
		if !d.Online || !online[d.ID] {
			t.Errorf("device %s: online=%v announced=%v", d.ID, d.Online, online[d.ID])
		}
	}

	// Calls through the gateway, against the simulator's firmware.
	id := devs[0].ID
	callCtx, callCancel := context.WithTimeout(ctx, 30*time.Second)
	defer callCancel()
	// Describe arrives right after Hello; wait until the function is known.
	for {
		d, err := srv.store.DeviceByID(ctx, id)
		if err == nil && len(d.Functions) > 0 && len(d.Variables) == 4 {
			break
		}
		select {
		case <-callCtx.Done():
			t.Fatalf("describe of %s never stored: %+v", id, d)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, c := range []struct {
		arg  string
		want int32
	}{{"on", 1}, {"off", 0}, {"blink", -1}, {"on", 1}} {
		got, err := srv.gw.CallFunction(callCtx, id, "led", c.arg)
		if err != nil || got != c.want {
			t.Errorf("led(%q) = %d, %v; want %d", c.arg, got, err, c.want)
		}
	}
	if v, err := srv.gw.GetVariable(callCtx, id, "on"); err != nil || v != true {
		t.Errorf("on = %v, %v; want true after led(on)", v, err)
	}
	if v, err := srv.gw.GetVariable(callCtx, id, "label"); err != nil {
		t.Errorf("label: %v", err)
	} else if s, ok := v.(string); !ok || s == "" {
		t.Errorf("label = %#v; want a non-empty string", v)
	}
	if v, err := srv.gw.GetVariable(callCtx, id, "temp"); err != nil {
		t.Errorf("temp: %v", err)
	} else if _, ok := v.(float64); !ok {
		t.Errorf("temp = %#v; want a double", v)
	}
	if v, err := srv.gw.GetVariable(callCtx, id, "count"); err != nil {
		t.Errorf("count: %v", err)
	} else if _, ok := v.(int32); !ok {
		t.Errorf("count = %#v; want an int32", v)
	}
	if _, err := srv.gw.GetVariable(callCtx, id, "nope"); err == nil {
		t.Error("unknown variable read succeeded")
	}

	// Kill the simulator: every device goes offline within the keep-alive
	// window (the gateway's idle timeout), with spark/status offline.
	if err := sim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	sim.Wait()
	killedAt := time.Now()
	waitStatus("offline", 45*time.Second)
	t.Logf("all %d devices offline %v after SIGKILL", count, time.Since(killedAt).Round(time.Millisecond))
	devs, err = srv.store.DevicesByOwner(ctx, maker.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.Online {
			t.Errorf("device %s still online in the store", d.ID)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); err != nil {
		t.Errorf("--keys-dir not written: %v", err)
	}
}
