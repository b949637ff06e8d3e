package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

func TestMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A "v0" file: a flat bucket of names the fake step moves into "people".
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("legacy"))
		if err != nil {
			return err
		}
		return b.Put([]byte("U0ALICE01"), []byte("Alice"))
	}); err != nil {
		t.Fatal(err)
	}
	fake := []migration{{to: 1, name: "move legacy to people", apply: func(tx *bbolt.Tx) error {
		people, err := tx.CreateBucket([]byte("people"))
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte("legacy")).ForEach(people.Put); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte("legacy"))
	}}}
	run := func(steps []migration) (from, to uint64, err error) {
		err = db.Update(func(tx *bbolt.Tx) error {
			var err error
			from, to, err = migrate(tx, steps)
			return err
		})
		return from, to, err
	}

	if from, to, err := run(fake); from != 0 || to != 1 || err != nil {
		t.Fatalf("migrate = %d→%d, %v; want 0→1, nil", from, to, err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("legacy")) != nil {
			return errors.New("legacy bucket still there")
		}
		if got := string(tx.Bucket([]byte("people")).Get([]byte("U0ALICE01"))); got != "Alice" {
			return errors.New("people[U0ALICE01] = " + got)
		}
		if v := schemaVersion(tx); v != 1 {
			return errors.New("version not recorded")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a file at the latest version is left alone.
	if from, to, err := run(fake); from != 1 || to != 1 || err != nil {
		t.Errorf("second migrate = %d→%d, %v; want 1→1, nil", from, to, err)
	}
	// A failing step rolls back with the transaction and names itself.
	failing := append(fake, migration{to: 2, name: "broken", apply: func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucket([]byte("half")); err != nil {
			return err
		}
		return errors.New("disk says no")
	}})
	if _, _, err := run(failing); err == nil || !strings.Contains(err.Error(), "migrate schema 1→2 (broken): disk says no") {
		t.Errorf("failing step: %v", err)
	}
	db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("half")) != nil || schemaVersion(tx) != 1 {
			t.Errorf("failed step left changes behind (version %d)", schemaVersion(tx))
		}
		return nil
	})
	// A file newer than the code is refused.
	if _, _, err := run(nil); err == nil || !strings.Contains(err.Error(), "newer than this accessbot supports") {
		t.Errorf("newer file: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, seqKey(99))
	})
	db.Close()
	if _, err := Open(path, Options{NoSync: true}); err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Errorf("Open newer file: %v", err)
	}
}

// TestInstallationID: a new file gets a random installation ID that
// survives reopening; a schema v1 file (from before installation IDs) is
// given one when it is opened.
func TestInstallationID(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.InstallationID(ctx)
	if err != nil || len(id) != 36 {
		t.Fatalf("InstallationID = %q, %v; want a UUID", id, err)
	}
	s.Close()
	if s, err = Open(path, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.InstallationID(ctx); again != id {
		t.Errorf("after reopen %q, was %q", again, id)
	}
	s.Close()

	// A v1 file: migrate only the first step, as the previous release did.
	v1 := filepath.Join(t.TempDir(), "v1.db")
	db, err := bbolt.Open(v1, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, _, err := migrate(tx, migrations[:1]); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(v1, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if other, err := s.InstallationID(ctx); err != nil || len(other) != 36 || other == id {
		t.Errorf("v1 file's InstallationID after upgrade = %q, %v", other, err)
	}
}
