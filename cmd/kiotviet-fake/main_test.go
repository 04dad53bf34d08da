package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/internal/kiotviet"
)

// TestRunServesAndPrintsCredentials starts the binary's run on a free port,
// reads the printed URLs and credentials, and syncs with the real client.
func TestRunServesAndPrintsCredentials(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-port", "0", "-products", "150", "-seed", "3"}, pw, io.Discard)
		pw.Close()
	}()
	vals := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() && len(vals) < 5 {
		line := strings.TrimSpace(sc.Text())
		for _, key := range []string{"KIOTVIET_TOKEN_URL=", "KIOTVIET_API_URL=", "retailer:", "client id:", "client secret:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				vals[key] = strings.TrimSpace(v)
			}
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cfg := kiotviet.Config{TokenURL: vals["KIOTVIET_TOKEN_URL="], APIURL: vals["KIOTVIET_API_URL="]}
	creds := kiotviet.Credentials{Retailer: vals["retailer:"], ClientID: vals["client id:"], ClientSecret: vals["client secret:"]}
	c := kiotviet.New(cfg, creds.Retailer, kiotviet.NewTokenSource(cfg, creds))
	p := c.Products(kiotviet.ListOptions{IncludeInventory: true})
	n := 0
	for p.Next(ctx) {
		n += len(p.Page().Items)
	}
	if err := p.Err(); err != nil || n != 150 {
		t.Fatalf("synced %d products, err %v", n, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	if err := run(context.Background(), []string{"-error-rate", "2"}, io.Discard, io.Discard); err == nil {
		t.Fatal("want an error for -error-rate 2")
	}
}
