//go:build !linux

package main

import "errors"

var errNotLinux = errors.New("only on Linux")

func raiseNoFile() (uint64, error) { return 0, errNotLinux }
