// Command kvsync serves the KiotViet sync functions and gives admins and DBAs a command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kvsync:", err)
		os.Exit(1)
	}
}

// run is the whole program; tests call it as main does.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q: see 'kvsync --help'", args[0])
	}
	err := cmd.run(ctx, env{args: args[1:], getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// env is what every subcommand gets from run.
type env struct {
	args           []string
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, e env) error
}

// commands is the command table: one line per subcommand.
func commands() map[string]command {
	return map[string]command{
		"serve":       {"serve the functions, /healthz and /metrics", cmdServe},
		"dispatch":    {"run one dispatcher tick now, wait for its syncs and print the results", cmdDispatch},
		"sync":        {"sync one credential and sync type now, with live progress", cmdSync},
		"status":      {"show every schedule: next run, last run, failures, progress", cmdStatus},
		"credentials": {"add, list or deactivate KiotViet connections", cmdCredentials},
		"schedule":    {"create or change a credential's schedule", cmdSchedule},
		"keys":        {"generate an encryption key, or re-encrypt every credential with the newest", cmdKeys},
		"cron":        {"install or uninstall the pg_cron job and its Vault secrets", cmdCron},
		"doctor":      {"check the database, cron job, secrets, dispatcher and keys, and say how to fix", cmdDoctor},
		"migrate":     {"apply supabase/migrations to the database", cmdMigrate},
		"install":     {"migrations, Vault secrets and cron jobs, then doctor: one idempotent command", cmdInstall},
		"webhooks":    {"register, list or remove a credential's KiotViet webhooks", cmdWebhooks},
		"alerts":      {"send a test message to every alert channel and say which failed", cmdAlerts},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kvsync keeps a Supabase database in sync with KiotViet on a schedule.")
	fmt.Fprintln(w, "\nUsage: kvsync <command> [flags]   (kvsync <command> --help for its flags)\n\nCommands:")
	cmds := commands()
	for _, name := range sortedCommands() {
		fmt.Fprintf(w, "  %-12s %s\n", name, cmds[name].summary)
	}
}
