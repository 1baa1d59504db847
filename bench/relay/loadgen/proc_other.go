//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNotLinux = errors.New("only on Linux")

func raiseNoFile() (uint64, error)           { return 0, errNotLinux }
func memKiB(int) (rss, hwm int64, err error) { return 0, 0, errNotLinux }
func cpuTime(int) (time.Duration, error)     { return 0, errNotLinux }
func loadAvg() string                        { return "n/a" }
func busyTime() (time.Duration, error)       { return 0, errNotLinux }
