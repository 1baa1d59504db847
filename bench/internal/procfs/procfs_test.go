package procfs

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := CPUTime(os.Getpid()); err == nil {
			t.Error("CPUTime: no error off Linux")
		}
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	for i := 0; i < 1e7; i++ { // some CPU time to read
		_ = strings.Repeat("x", i%8)
	}
	if cpu, err := CPUTime(pid); err != nil || cpu <= 0 {
		t.Errorf("CPUTime = %v, %v", cpu, err)
	}
	if rss, hwm, err := MemKiB(pid); err != nil || rss <= 0 || hwm < rss {
		t.Errorf("MemKiB = %d, %d, %v", rss, hwm, err)
	}
	if n, err := FDs(pid); err != nil || n < 3 {
		t.Errorf("FDs = %d, %v", n, err)
	}
	if l := LoadAvg(); len(strings.Fields(l)) != 3 {
		t.Errorf("LoadAvg = %q", l)
	}
	if busy, err := BusyTime(); err != nil || busy <= 0 {
		t.Errorf("BusyTime = %v, %v", busy, err)
	}
	if _, _, err := MemKiB(1 << 30); err == nil {
		t.Error("MemKiB of no process: no error")
	}
}
