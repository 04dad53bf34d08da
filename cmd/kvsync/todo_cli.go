package main

import "errors"

// errNotYet is what a subcommand still being written returns (bench, until it lands); delete this file then.
var errNotYet = errors.New("not implemented yet")
