package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/config"
)

func TestRequireExisting(t *testing.T) {
	ctx := context.Background()
	installed := testConfig(t)
	if _, err := CreateUser(ctx, installed, nil, "dev@example.com", "a-long-password"); err != nil {
		t.Fatal(err)
	}
	emptyDir := testConfig(t)
	os.MkdirAll(emptyDir.Data, 0o700)
	noKey := testConfig(t)
	os.MkdirAll(noKey.Data, 0o700)
	os.WriteFile(filepath.Join(noKey.Data, "wick.db"), nil, 0o600)
	postgres := testConfig(t)
	postgres.DB = "postgres://wick:secret@db.example.com/wick"
	os.MkdirAll(postgres.Data, 0o700)
	os.WriteFile(filepath.Join(postgres.Data, "secret.key"), nil, 0o600)

	tests := []struct {
		name    string
		cfg     config.Serve
		missing string // "" when the data exists
	}{
		{"installed", installed, ""},
		{"no directory", testConfig(t), "data directory"},
		{"empty directory", emptyDir, "database"},
		{"no secret key", noKey, "secret key file"},
		{"postgres needs no database file", postgres, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RequireExisting(tt.cfg)
			if tt.missing == "" {
				if err != nil {
					t.Fatalf("RequireExisting = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), tt.missing) || !strings.Contains(err.Error(), "--init") {
				t.Fatalf("RequireExisting = %v; want ErrNoData naming the %s and --init", err, tt.missing)
			}
			if _, statErr := os.Stat(tt.cfg.Data + "/wick.lock"); statErr == nil {
				t.Error("RequireExisting created files")
			}
		})
	}
}

func TestLocate(t *testing.T) {
	cfg := config.Default()
	cfg.Data = "rel-data"
	w, err := Locate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "rel-data"); w.Data != want || w.DB != "sqlite:"+filepath.Join(want, "wick.db") {
		t.Errorf("Locate = %+v; want absolute paths under %s", w, want)
	}
	cfg.DB = "postgres://wick:hunter2@db/wick"
	if w, _ := Locate(cfg); strings.Contains(w.String(), "hunter2") {
		t.Errorf("Locate leaks the password: %s", w)
	}
}

// TestDataLock: a second server on a data directory in use does not start
// and names the holder; once the first stops, the directory is free.
func TestDataLock(t *testing.T) {
	cfg := testConfig(t)
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	first, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	<-first.Ready()

	if _, err := New(context.Background(), cfg, log); !errors.Is(err, ErrDataInUse) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) ||
		!strings.Contains(err.Error(), "http "+first.HTTPAddr().String()) {
		t.Fatalf("second New = %v; want ErrDataInUse naming pid %d and the listener", err, os.Getpid())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	again, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("New after the first stopped: %v", err)
	}
	again.close()
}

// TestSecondServeRefused is the proof with real processes: a
// second `wick serve` on the data directory of a running one exits with
// status 1 and names the first; after the first is killed with SIGKILL
// (no clean-up), a new one starts.
func TestSecondServeRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wick binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildWick(t, dir)
	data := filepath.Join(dir, "data")
	args := []string{"serve", "--data", data, "--http", "127.0.0.1:0", "--device-tcp", "127.0.0.1:0"}

	start := func() (*exec.Cmd, *lockedBuffer) {
		var out lockedBuffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "wick listening") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("wick serve did not start:\n%s", out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return cmd, &out
	}
	first, firstOut := start()
	defer first.Process.Kill()
	if !strings.Contains(firstOut.String(), "data="+data) {
		t.Errorf("start-up log does not name the data directory %s:\n%s", data, firstOut.String())
	}

	second := exec.Command(bin, args...)
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second wick serve: %v; want exit status 1\n%s", err, out)
	}
	if want := fmt.Sprintf("is locked by wick serve (pid %d", first.Process.Pid); !strings.Contains(string(out), want) {
		t.Errorf("second wick serve says %q; want it to contain %q", out, want)
	}

	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	third, _ := start()
	third.Process.Signal(syscall.SIGTERM)
	if err := third.Wait(); err != nil {
		t.Errorf("third wick serve after SIGTERM: %v", err)
	}
}
