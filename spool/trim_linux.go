package spool

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is Linux's MADV_PAGEOUT (5.4 and later).
const madvPageout = 21

// trimMapped asks the kernel to reclaim the pages of badger's table and
// value-log files that this process maps from dir (MADV_PAGEOUT). badger
// writes and reads those files through memory maps, so every page it wrote
// or read stays in the process's resident set, although the kernel could
// drop it at any time (they are clean file pages, on disk): without this,
// the resident set grows with the data on disk. Reading a page again
// faults it back in from the page cache or the card. The write-ahead logs
// of the memtables (*.mem), which are written all the time, are left
// alone. It returns the bytes of the ranges it advised.
//
// MADV_PAGEOUT destroys nothing, whatever the range holds: a range that
// was unmapped and reused since /proc/self/maps was read is only paged
// out (anonymous memory without swap is left as it is).
func trimMapped(dir string) (int64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	prefix := abs + string(filepath.Separator)
	var total int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// start-end perms offset dev inode path
		i := bytes.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := string(line[i:])
		if !strings.HasPrefix(path, prefix) || !(strings.HasSuffix(path, ".sst") || strings.HasSuffix(path, ".vlog")) {
			continue
		}
		rng, _, _ := bytes.Cut(line, []byte{' '})
		lo, hi, ok := bytes.Cut(rng, []byte{'-'})
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout)
		if errno == syscall.EINVAL {
			return total, errno // a kernel before 5.4
		}
		if errno == 0 {
			total += int64(end - start)
		}
	}
	return total, sc.Err()
}
