// mongo-server: a MongoDB-wire server for tests and local trials, with no MongoDB binary.
//
// It embeds FerretDB 1.24 (github.com/FerretDB/FerretDB/ferretdb) with its SQLite handler: the
// `ferretdb` command built by `go install` panics at start (its module zip lacks a version file),
// the embeddable package does not. Listens on loopback only; stops on SIGTERM or SIGINT.
//
//	mongo-server -port 27017 -dir ./data/mongo [-log-level info]
//
// Prints "ready <uri>" on stdout once it accepts connections.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	port := flag.Int("port", 27017, "TCP port on 127.0.0.1")
	dir := flag.String("dir", "./data/mongo", "folder for the SQLite files (created if missing)")
	level := flag.String("log-level", "warn", "debug, info, warn or error (info logs every connection)")
	flag.Parse()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatalf("mongo-server: %v", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		log.Fatalf("mongo-server: cannot create %s: %v", abs, err)
	}
	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
		log.Fatalf("mongo-server: -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		log.Fatalf("mongo-server: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan struct{})
	go func() {
		server.Run(ctx)
		close(done)
	}()

	// Run does not say when it listens: poll the port so callers can wait for one line.
	for deadline := time.Now().Add(30 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-done:
			log.Fatalf("mongo-server: stopped before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			log.Fatalf("mongo-server: not listening on %s after 30 s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("ready mongodb://%s/\n", addr)
	<-done
}
