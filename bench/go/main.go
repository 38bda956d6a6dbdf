// Command go_store_bench times go-store's file operations as go-store runs
// them: database/sql with one connection, journal_mode=WAL and
// busy_timeout=5000 and no other pragma (so synchronous stays SQLite's
// default, FULL, unless -synchronous is given), and every call an Exec or
// QueryRow of SQL text (database/sql prepares it again on each call). Prints
// one JSON object: nanoseconds per operation, the best of -rounds rounds.
//
//	go_store_bench -path FILE -keys N -ops N -rounds N [-synchronous MODE]
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

const set = `INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, NULL)
	ON CONFLICT(group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = NULL`
const get = "SELECT entry_value, expires_at FROM entries WHERE group_name = ? AND entry_key = ?"

func main() {
	path := flag.String("path", "", "database file")
	keys := flag.Int("keys", 10000, "keys in the file")
	ops := flag.Int("ops", 20000, "operations per round")
	rounds := flag.Int("rounds", 5, "rounds; the best is reported")
	synchronous := flag.String("synchronous", "", "PRAGMA synchronous, default none")
	flag.Parse()
	if err := run(*path, *keys, *ops, *rounds, *synchronous); err != nil {
		fmt.Fprintln(os.Stderr, "go_store_bench:", err)
		os.Exit(1)
	}
}

func run(path string, keys, ops, rounds int, synchronous string) error {
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, pragma := range []string{"PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000"} {
		if _, err := db.Exec(pragma); err != nil {
			return err
		}
	}
	if synchronous != "" {
		if _, err := db.Exec("PRAGMA synchronous=" + synchronous); err != nil {
			return err
		}
	}
	key := make([]string, keys)
	for i := range key {
		key[i] = fmt.Sprintf("key-%d", i)
	}
	setStmt, err := db.Prepare(set)
	if err != nil {
		return err
	}
	defer setStmt.Close()
	getStmt, err := db.Prepare(get)
	if err != nil {
		return err
	}
	defer getStmt.Close()
	best := map[string]float64{}
	keep := func(name string, start time.Time) {
		ns := float64(time.Since(start).Nanoseconds()) / float64(ops)
		if old, ok := best[name]; !ok || ns < old {
			best[name] = ns
		}
	}
	for round := 0; round < rounds; round++ {
		// As go-store runs them: SQL text, prepared again by each call.
		start := time.Now()
		for i := 0; i < ops; i++ {
			value := fmt.Sprintf("go %d of round %d", i, round)
			if _, err := db.Exec(set, "go", key[i%keys], value); err != nil {
				return err
			}
		}
		keep("set", start)
		start = time.Now()
		for i := 0; i < ops; i++ {
			var value string
			var expiresAt sql.NullInt64
			if err := db.QueryRow(get, "go", key[i%keys]).Scan(&value, &expiresAt); err != nil {
				return err
			}
		}
		keep("get", start)
		// The same SQL through statements prepared once.
		start = time.Now()
		for i := 0; i < ops; i++ {
			value := fmt.Sprintf("prepared %d of round %d", i, round)
			if _, err := setStmt.Exec("go", key[i%keys], value); err != nil {
				return err
			}
		}
		keep("setPrepared", start)
		start = time.Now()
		for i := 0; i < ops; i++ {
			var value string
			var expiresAt sql.NullInt64
			if err := getStmt.QueryRow("go", key[i%keys]).Scan(&value, &expiresAt); err != nil {
				return err
			}
		}
		keep("getPrepared", start)
	}
	var mode string
	if err := db.QueryRow("PRAGMA synchronous").Scan(&mode); err != nil {
		return err
	}
	out, err := json.Marshal(map[string]any{"ns": best, "synchronous": mode})
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
