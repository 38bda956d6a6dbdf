// Command files runs go-store's SQL against a file, so the Deno tests can
// exchange files with real Go: database/sql, one connection, and the
// statements of go-store v0.2.0 (table kv) or of v0.2.1 and later (table
// entries, with the move of kv into entries on open).
//
//	files write   PATH FORMAT < rows.json     set rows, print {"written":N}
//	files read    PATH FORMAT                 print every live row as JSON
//	files migrate PATH                        open as current go-store does
//	files loop    PATH FORMAT GROUP N MAXMS   set GROUP/k0..k(N-1), bounded
//
// FORMAT is "v0.2.0" or "current". A row is {"group","key","value","ttlMs"};
// ttlMs 0 means no expiry, a negative one an expiry in the past.
package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

type row struct {
	Group     string `json:"group"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	TTLMs     int64  `json:"ttlMs,omitempty"`
	ExpiresAt *int64 `json:"expiresAt"`
}

// statements is go-store's SQL for one format.
type statements struct {
	set, setTTL, get, groups, all string
}

var v020 = statements{
	set: `INSERT INTO kv (grp, key, value, expires_at) VALUES (?, ?, ?, NULL)
		ON CONFLICT(grp, key) DO UPDATE SET value = excluded.value, expires_at = NULL`,
	setTTL: `INSERT INTO kv (grp, key, value, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(grp, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
	get:    "SELECT value, expires_at FROM kv WHERE grp = ? AND key = ?",
	groups: "SELECT DISTINCT grp FROM kv WHERE (expires_at IS NULL OR expires_at > ?)",
	all:    "SELECT key, value FROM kv WHERE grp = ? AND (expires_at IS NULL OR expires_at > ?)",
}

var current = statements{
	set: `INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, NULL)
		ON CONFLICT(group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = NULL`,
	setTTL: `INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = excluded.expires_at`,
	get:    "SELECT entry_value, expires_at FROM entries WHERE group_name = ? AND entry_key = ?",
	groups: "SELECT DISTINCT group_name FROM entries WHERE (expires_at IS NULL OR expires_at > ?) ORDER BY group_name",
	all:    "SELECT entry_key, entry_value FROM entries WHERE group_name = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY entry_key",
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "files:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: files write|read|migrate|loop PATH ...")
	}
	command, path := args[0], args[1]
	format := "current"
	if command != "migrate" {
		if len(args) < 3 {
			return errors.New("missing FORMAT")
		}
		format = args[2]
	}
	db, sqlFor, err := open(path, format)
	if err != nil {
		return err
	}
	defer db.Close()
	switch command {
	case "write":
		var rows []row
		if err := json.NewDecoder(os.Stdin).Decode(&rows); err != nil {
			return err
		}
		for _, r := range rows {
			if err := set(db, sqlFor, r.Group, r.Key, r.Value, r.TTLMs); err != nil {
				return err
			}
		}
		return emit(map[string]int{"written": len(rows)})
	case "read":
		rows, err := readAll(db, sqlFor)
		if err != nil {
			return err
		}
		return emit(rows)
	case "migrate":
		return emit(map[string]string{"migrated": path})
	case "loop":
		if len(args) < 6 {
			return errors.New("loop needs GROUP N MAXMS")
		}
		return loop(db, sqlFor, args[3], args[4], args[5])
	}
	return fmt.Errorf("unknown command %q", command)
}

// open opens the file as go-store of the format does: one connection, WAL,
// a busy timeout of 5 s, and its schema step. A current go-store whose move
// of kv loses a race with another writer fails to open; this program tries
// again, as an application would.
func open(path, format string) (*sql.DB, statements, error) {
	var sqlFor statements
	switch format {
	case "v0.2.0":
		sqlFor = v020
	case "current":
		sqlFor = current
	default:
		return nil, sqlFor, fmt.Errorf("unknown format %q", format)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		db, err := sql.Open("sqlite3", path)
		if err != nil {
			return nil, sqlFor, err
		}
		db.SetMaxOpenConns(1)
		err = configure(db, format)
		if err == nil {
			return db, sqlFor, nil
		}
		db.Close()
		if !isBusy(err) || time.Now().After(deadline) {
			return nil, sqlFor, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func configure(db *sql.DB, format string) error {
	if _, err := db.Exec("PRAGMA journal_mode=WAL"); err != nil {
		return err
	}
	if _, err := db.Exec("PRAGMA busy_timeout=5000"); err != nil {
		return err
	}
	if format == "v0.2.0" {
		return schemaV020(db)
	}
	return schemaCurrent(db)
}

func schemaV020(db *sql.DB) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS kv (
		grp        TEXT NOT NULL,
		key        TEXT NOT NULL,
		value      TEXT NOT NULL,
		expires_at INTEGER,
		PRIMARY KEY (grp, key)
	)`); err != nil {
		return err
	}
	_, err := db.Exec("ALTER TABLE kv ADD COLUMN expires_at INTEGER")
	if err != nil && !strings.Contains(err.Error(), "duplicate column name") {
		return err
	}
	return nil
}

const createEntries = `CREATE TABLE IF NOT EXISTS entries (
	group_name  TEXT NOT NULL,
	entry_key   TEXT NOT NULL,
	entry_value TEXT NOT NULL,
	expires_at  INTEGER,
	PRIMARY KEY (group_name, entry_key)
)`

// schemaCurrent is the schema step of go-store v0.2.1 and later.
func schemaCurrent(db *sql.DB) error {
	hasEntries, err := hasTable(db, "entries")
	if err != nil {
		return err
	}
	hasKV, err := hasTable(db, "kv")
	if err != nil {
		return err
	}
	if hasEntries {
		if err := addExpiry(db, "entries"); err != nil {
			return err
		}
	}
	if hasKV {
		return moveKV(db)
	}
	if !hasEntries {
		_, err = db.Exec(createEntries)
	}
	return err
}

// moveKV copies kv into entries (rows already in entries win) and drops kv,
// in one deferred transaction, as go-store does.
func moveKV(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(createEntries); err != nil {
		return err
	}
	expiry := "NULL"
	if ok, err := hasColumn(tx, "kv", "expires_at"); err != nil {
		return err
	} else if ok {
		expiry = "expires_at"
	}
	if _, err := tx.Exec(`INSERT OR IGNORE INTO entries (group_name, entry_key, entry_value, expires_at)
		SELECT grp, key, value, ` + expiry + ` FROM kv`); err != nil {
		return err
	}
	if _, err := tx.Exec("DROP TABLE kv"); err != nil {
		return err
	}
	return tx.Commit()
}

type querier interface {
	Query(query string, args ...any) (*sql.Rows, error)
	QueryRow(query string, args ...any) *sql.Row
}

func hasTable(db querier, name string) (bool, error) {
	var found string
	err := db.QueryRow("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", name).Scan(&found)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, err
}

func hasColumn(db querier, table, column string) (bool, error) {
	rows, err := db.Query("PRAGMA table_info(" + table + ")")
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var cid, notNull, pk int
		var name, kind string
		var dflt sql.NullString
		if err := rows.Scan(&cid, &name, &kind, &notNull, &dflt, &pk); err != nil {
			return false, err
		}
		if name == column {
			return true, nil
		}
	}
	return false, rows.Err()
}

func addExpiry(db *sql.DB, table string) error {
	ok, err := hasColumn(db, table, "expires_at")
	if err != nil || ok {
		return err
	}
	_, err = db.Exec("ALTER TABLE " + table + " ADD COLUMN expires_at INTEGER")
	return err
}

func set(db *sql.DB, s statements, group, key, value string, ttlMs int64) error {
	if ttlMs == 0 {
		_, err := db.Exec(s.set, group, key, value)
		return err
	}
	expiresAt := time.Now().Add(time.Duration(ttlMs) * time.Millisecond).UnixMilli()
	_, err := db.Exec(s.setTTL, group, key, value, expiresAt)
	return err
}

// readAll lists the live rows through go-store's Groups, All and Get.
func readAll(db *sql.DB, s statements) ([]row, error) {
	now := time.Now().UnixMilli()
	groupRows, err := db.Query(s.groups, now)
	if err != nil {
		return nil, err
	}
	var groups []string
	for groupRows.Next() {
		var g string
		if err := groupRows.Scan(&g); err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	groupRows.Close()
	out := []row{}
	for _, g := range groups {
		keyRows, err := db.Query(s.all, g, now)
		if err != nil {
			return nil, err
		}
		var found []row
		for keyRows.Next() {
			r := row{Group: g}
			if err := keyRows.Scan(&r.Key, &r.Value); err != nil {
				return nil, err
			}
			found = append(found, r)
		}
		keyRows.Close()
		for _, r := range found {
			var value string
			var expiresAt sql.NullInt64
			if err := db.QueryRow(s.get, g, r.Key).Scan(&value, &expiresAt); err != nil {
				return nil, err
			}
			if value != r.Value {
				return nil, fmt.Errorf("get %q/%q disagrees with all", g, r.Key)
			}
			if expiresAt.Valid {
				at := expiresAt.Int64
				r.ExpiresAt = &at
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// loop sets GROUP/k0.. one write at a time until N are written or MAXMS
// have passed, and prints how many were written.
func loop(db *sql.DB, s statements, group, count, maxMs string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	ms, err := strconv.Atoi(maxMs)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	written := 0
	for written < n && time.Now().Before(deadline) {
		key := "k" + strconv.Itoa(written)
		if err := set(db, s, group, key, "go "+key, 0); err != nil {
			return err
		}
		written++
	}
	return emit(map[string]int{"written": written})
}

func isBusy(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && (e.Code == sqlite3.ErrBusy || e.Code == sqlite3.ErrLocked)
}

func emit(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}
