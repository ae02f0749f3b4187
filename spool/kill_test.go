package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary run helperMain instead of the tests: the
// child process of TestKill9KeepsAcknowledgedWrites.
const helperEnv = "OUTPOST_SPOOL_KILL_HELPER_DIR"

const (
	helperWorkers = 8
	killAfter     = 600 // acknowledged writes before the parent kills the child
)

// helperPayload is the message worker w appends as its i-th; every fifth is
// large enough for the value log.
func helperPayload(w, i int) []byte {
	b := fmt.Appendf(nil, "w%d-i%d|", w, i)
	if i%5 == 0 {
		b = append(b, bytes.Repeat([]byte{byte('a' + w)}, 3000)...)
	}
	return b
}

// helperMain appends to queue "q" from several goroutines and sets KV keys,
// with SyncAlways, and prints each acknowledged write to stdout until it is
// killed.
func helperMain(dir string) int {
	s, err := New(Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 2
	}
	q, err := s.Queue("q", Limits{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	kv, err := s.KV("kv")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	emit := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(line + "\n") // unbuffered: one write per line
	}
	fail := make(chan error, helperWorkers+1)
	for w := range helperWorkers {
		go func() {
			for i := 0; ; i++ {
				seqs, err := q.Append(context.Background(), helperPayload(w, i))
				if err != nil {
					fail <- err
					return
				}
				emit(fmt.Sprintf("q %d %d %d", seqs[0], w, i))
			}
		}()
	}
	go func() {
		for i := 0; ; i++ {
			key := fmt.Sprintf("key-%d", i)
			if err := kv.Set(context.Background(), key, []byte(key)); err != nil {
				fail <- err
				return
			}
			emit("kv " + key)
		}
	}()
	err = <-fail
	fmt.Fprintln(os.Stderr, "helper:", err)
	return 2
}

// TestKill9KeepsAcknowledgedWrites runs appenders in a child process, kills
// it with SIGKILL while they run, and checks that every append and set the
// child saw acknowledged is in the store, in order, and that sequence
// numbers go on from there.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	type ack struct{ w, i int }
	acked := map[uint64]ack{}
	var keys []string
	lines := 0
	timeout := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timeout.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "q":
			seq, err1 := strconv.ParseUint(f[1], 10, 64)
			w, err2 := strconv.Atoi(f[2])
			i, err3 := strconv.Atoi(f[3])
			if err := errors.Join(err1, err2, err3); err != nil {
				t.Fatalf("child printed %q: %v", sc.Text(), err)
			}
			if _, dup := acked[seq]; dup {
				t.Fatalf("seq %d acknowledged twice", seq)
			}
			acked[seq] = ack{w, i}
		case len(f) == 2 && f[0] == "kv":
			keys = append(keys, f[1])
		default:
			t.Fatalf("child printed %q", sc.Text())
		}
		lines++
		if lines == killAfter {
			// Mid-run: the workers are appending. The lines already in the
			// pipe are still read below.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	killed = true
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not by SIGKILL; stderr:\n%s", err, stderr.String())
	}
	if lines < killAfter {
		t.Fatalf("child printed %d lines before it ended; stderr:\n%s", lines, stderr.String())
	}
	t.Logf("child acknowledged %d appends and %d sets before SIGKILL", len(acked), len(keys))

	s := open(t, Options{Dir: dir})
	q := mustQueue(t, s.Store, "q", Limits{})
	items := mustRead(t, q, 0, 1<<20)
	stored := map[uint64][]byte{}
	var last uint64
	for _, it := range items {
		if it.Seq <= last {
			t.Fatalf("seq %d after %d: out of order", it.Seq, last)
		}
		last = it.Seq
		stored[it.Seq] = it.Data
	}
	for seq, a := range acked {
		data, ok := stored[seq]
		if !ok {
			t.Fatalf("acknowledged seq %d (worker %d, #%d) is gone after kill -9", seq, a.w, a.i)
		}
		if !bytes.Equal(data, helperPayload(a.w, a.i)) {
			t.Fatalf("seq %d holds %.40q, want worker %d #%d", seq, data, a.w, a.i)
		}
	}
	// Each worker's messages are in the order it appended them.
	lastOf := map[int]int{}
	for _, it := range items {
		var w, i int
		if _, err := fmt.Sscanf(string(it.Data), "w%d-i%d|", &w, &i); err != nil {
			t.Fatalf("seq %d holds %.40q", it.Seq, it.Data)
		}
		if prev, ok := lastOf[w]; ok && i != prev+1 {
			t.Fatalf("worker %d: #%d stored after #%d", w, i, prev)
		}
		lastOf[w] = i
	}
	if st := q.Stats(); st.Depth != int64(len(items)) {
		t.Fatalf("recovered depth %d, but %d items", st.Depth, len(items))
	}
	kv, _ := s.KV("kv")
	for _, k := range keys {
		if v, ok, err := kv.Get(k); err != nil || !ok || string(v) != k {
			t.Fatalf("acknowledged KV set %q is gone after kill -9: %q %v %v", k, v, ok, err)
		}
	}
	next := mustAppend(t, q, []byte("after"))[0]
	if next <= last {
		t.Fatalf("seq %d after restart reuses a seq (last stored %d)", next, last)
	}
}
