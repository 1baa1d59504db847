// Package procfs reads what the benchmarks measure of a process or of the
// machine from Linux's /proc: a process's CPU time, resident memory and
// open files, the load average and the machine's busy CPU time. On other
// systems each reading fails (the file is not there).
package procfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// tick is a clock tick of /proc's CPU times (USER_HZ = 100).
const tick = 10 * time.Millisecond

// CPUTime returns the user+system CPU time of process pid (utime and stime
// of /proc/PID/stat).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	// fields after ")" start at field 3 (state); utime is 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * tick, nil
}

// MemKiB returns VmRSS (resident memory) and VmHWM (its peak) of process
// pid in KiB, from /proc/PID/status. A process with no VmRSS (a zombie, a
// kernel thread) is an error.
func MemKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss, found = n, true
		case "VmHWM":
			hwm = n
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, hwm, nil
}

// FDs returns how many files process pid has open (the entries of
// /proc/PID/fd).
func FDs(pid int) (int, error) {
	e, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(e), err
}

// LoadAvg returns the first three fields of /proc/loadavg ("0.52 0.58
// 0.59"), or "" when it cannot be read.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// BusyTime returns the CPU time all processes of the machine spent busy
// (user, nice, system, irq, softirq, steal in /proc/stat).
func BusyTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var t int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		t += n
	}
	return time.Duration(t) * tick, nil
}
