package main

import (
	"context"
	"fmt"
	"os"
)

// A command line the viewer refuses: the error after the command's name,
// and exit code 2, before any AWS call.
func Example() {
	code := run(context.Background(), []string{"viewer", "--channel", "cam", "--nat", "relay"}, os.Stdout, os.Stdout)
	fmt.Println("exit code", code)
	// Output:
	// kvswebrtc viewer: --nat "relay" is not stun-turn, turn-only, stun-only or disabled
	// exit code 2
}
