package spool

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// mappedRSS returns the resident bytes of the mappings of file, from
// /proc/self/smaps.
func mappedRSS(t *testing.T, file string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = strings.HasSuffix(line, " "+file)
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

// TestTrimMapped maps a table-like file, writes every page (they are then
// resident), and checks that trimMapped pages them out, and that it leaves
// a memtable log (*.mem) alone.
func TestTrimMapped(t *testing.T) {
	dir := t.TempDir()
	const size = 4 << 20
	mapFile := func(name string) []byte {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Munmap(b) })
		for i := 0; i < size; i += 4096 {
			b[i] = 1
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		return b
	}
	mapFile("000001.sst")
	mapFile("000002.mem")
	sst, mem := filepath.Join(dir, "000001.sst"), filepath.Join(dir, "000002.mem")
	if r := mappedRSS(t, sst); r < size/2 {
		t.Fatalf("written table: %d resident bytes, want about %d", r, size)
	}
	n, err := trimMapped(dir)
	if errors.Is(err, syscall.EINVAL) {
		t.Skip("kernel without MADV_PAGEOUT")
	}
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("advised %d bytes, want %d (the table only)", n, size)
	}
	if r := mappedRSS(t, sst); r >= size/2 {
		t.Fatalf("after trimMapped the table has %d resident bytes", r)
	}
	if r := mappedRSS(t, mem); r < size/2 {
		t.Fatalf("the memtable log lost its pages: %d resident bytes", r)
	}
}
