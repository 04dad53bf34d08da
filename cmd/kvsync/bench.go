package main

import "context"

func cmdBench(context.Context, env) error { return errNotYet }
