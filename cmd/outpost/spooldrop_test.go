package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gw/outpost/spool"
)

// outpost spool drop drops the named queues of a stopped gateway's spool
// and says how many messages each held; "outpost spool" marks the queues
// of uplinks that are not configured as orphans.
func TestSpoolDrop(t *testing.T) {
	data := t.TempDir()
	store, err := spool.New(spool.Options{Dir: filepath.Join(data, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- store.Run(ctx) }()
	<-store.Ready()
	for _, name := range []string{"uplink.old.p0", "uplink.old.p1"} {
		q, err := store.Queue(name, spool.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Append(ctx, []byte("a"), []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A config without uplinks: its queues are orphans. Without a config
	// nothing says so.
	cfg := filepath.Join(t.TempDir(), "outpost.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\n", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := outpostCmd(t, "spool", "-c", cfg)
	if code != 0 || !strings.Contains(out, "priority 0 (orphan)") {
		t.Fatalf("outpost spool -c = %d, %q %q; want the queues marked as orphans", code, out, errOut)
	}
	if code, out, _ := outpostCmd(t, "spool", "-data", data); code != 0 || strings.Contains(out, "orphan") {
		t.Fatalf("outpost spool -data = %d, %q; want no orphan marks without a config", code, out)
	}
	code, out, errOut = outpostCmd(t, "spool", "drop", "-data", data, "uplink.old.p1")
	if code != 0 || !strings.Contains(out, "dropped uplink.old.p1: 2 messages") {
		t.Fatalf("outpost spool drop = %d, %q %q", code, out, errOut)
	}
	code, out, _ = outpostCmd(t, "spool", "-data", data)
	if code != 0 || strings.Contains(out, "uplink.old.p1") || !strings.Contains(out, "uplink.old.p0") {
		t.Fatalf("after the drop: %q", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"spool", "drop", "-data", data}, 2, "name at least one queue"},
		{[]string{"spool", "drop", "-data", data, "uplink.none.p0"}, 1, `no spool queue "uplink.none.p0"`},
		{[]string{"spool", "drop", "-data", t.TempDir(), "q"}, 1, "no spool in"},
	} {
		code, out, errOut := outpostCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("outpost %q = %d, %q; want %d and a message with %q", tc.args, code, out+errOut, tc.code, tc.want)
		}
	}
}
