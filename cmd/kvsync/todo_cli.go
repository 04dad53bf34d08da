package main

import (
	"context"
	"errors"
)

// Subcommands still being written; each moves to its own file when it lands.

var errNotYet = errors.New("not implemented yet")

func cmdDispatch(context.Context, env) error    { return errNotYet }
func cmdSync(context.Context, env) error        { return errNotYet }
func cmdStatus(context.Context, env) error      { return errNotYet }
func cmdCredentials(context.Context, env) error { return errNotYet }
func cmdSchedule(context.Context, env) error    { return errNotYet }
func cmdKeys(context.Context, env) error        { return errNotYet }
func cmdCron(context.Context, env) error        { return errNotYet }
func cmdDoctor(context.Context, env) error      { return errNotYet }
