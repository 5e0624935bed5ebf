package brokertest

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// ConnsTo counts this process's established TCP connections to port (on
// any address), read from /proc (Linux); 0 where /proc is missing.
func ConnsTo(port int) int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		l, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "01" || !inodes[fs[9]] { // 01: established
				continue
			}
			rem := fs[2]
			p, _ := strconv.ParseUint(rem[strings.LastIndex(rem, ":")+1:], 16, 32)
			if int(p) == port {
				n++
			}
		}
	}
	return n
}

// HeapInUse returns the heap in use after a garbage collection.
func HeapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
