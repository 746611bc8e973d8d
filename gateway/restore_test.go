package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

func restoreConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`gateway:
  id: gw-restore
  county: "320583"
  township: "320583104"
  data_dir: %q
uplink:
  brokers: ["tcp://127.0.0.1:1"]
`, dir)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// store is the gateway's store opened as New opens it: the same streams,
// sealed with the gateway's key.
type store struct {
	db  *badgerq.DB
	q   map[string]*badgerq.Queue
	key *identity.Key
}

func openStore(t *testing.T, cfg *config.Config) *store {
	t.Helper()
	key, err := identity.Load(identity.Dir(cfg.Gateway.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	db, err := badgerq.Open(storeOptions(cfg, storeDir(cfg), nil))
	if err != nil {
		t.Fatal(err)
	}
	s := &store{db: db, q: map[string]*badgerq.Queue{}, key: key}
	for _, name := range []string{wire.StreamTelemetry, wire.StreamEvents, wire.StreamAlarms, wire.StreamEvidence} {
		q, err := db.Stream(name, badgerq.StreamOptions{Seal: wire.NewSealer(name, key).Seal})
		if err != nil {
			t.Fatal(err)
		}
		s.q[name] = q
	}
	return s
}

var tick int64

// add appends n records to a stream (readings on telemetry, recorder
// evidence on evidence).
func (s *store) add(t *testing.T, stream string, n int) {
	t.Helper()
	for range n {
		tick++
		r := wire.Record{Dev: "meter-01", Kind: "power", TS: 1_800_000_000_000 + tick, TSrc: wire.TSrcGateway,
			Vals: map[string]wire.Value{"energy_kwh": wire.Dec(tick, -2)}}
		if stream == wire.StreamEvidence {
			r = wire.Record{Dev: "zfy-001", Kind: "recorder", TS: 1_800_000_000_000 + tick, TSrc: wire.TSrcDevice,
				Vals: map[string]wire.Value{"file_id": wire.Text(fmt.Sprint("f", tick)), "size_bytes": wire.Int(tick)}}
		}
		p, err := wire.EncodeRecord(&r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.q[stream].Append(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// deliver sends every stream's backlog after seq `after` to the platform's
// audit, as the forwarder would (one batch per stream).
func (s *store) deliver(t *testing.T, cfg *config.Config, a *wire.Audit, after map[string]uint64) {
	t.Helper()
	for name, q := range s.q {
		if q.Stats().LastSeq <= after[name] {
			continue // Peek would wait for more
		}
		ents, err := q.Peek(context.Background(), after[name], 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			continue
		}
		var recs [][]byte
		for _, e := range ents {
			recs = append(recs, e.Data)
			after[name] = e.Seq
		}
		topic := wire.Topic(cfg.Gateway.County, cfg.Gateway.Township, cfg.Gateway.ID, name)
		if err := a.AddMessage(topic, wire.AppendBatch(nil, cfg.Gateway.ID, name, recs)); err != nil {
			t.Fatal(err)
		}
	}
}

// outage runs the story: records, an online backup, more records that
// reach the platform, the data directory lost, a restore, more records;
// everything the gateway sends reaches the platform's audit. naive
// restores the store as it was (no moves), to show what the audit sees
// without them.
func outage(t *testing.T, naive bool) wire.Report {
	cfg := restoreConfig(t)
	a := wire.NewAudit()
	s := openStore(t, cfg)
	a.TrustKey(cfg.Gateway.ID, s.key.Verifier())
	sent := map[string]uint64{}
	s.add(t, wire.StreamTelemetry, 5)
	s.add(t, wire.StreamEvidence, 3)
	s.deliver(t, cfg, a, sent)
	counter := filepath.Join(cfg.Gateway.DataDir, countersDir, "well-1.count")
	os.MkdirAll(filepath.Dir(counter), 0o750)
	os.WriteFile(counter, []byte("42\n"), 0o600)
	var backup bytes.Buffer
	if err := writeBackup(&backup, cfg, s.db, s.key.Path()); err != nil { // what Gateway.Backup does
		t.Fatal(err)
	}
	s.add(t, wire.StreamTelemetry, 4)
	s.add(t, wire.StreamEvidence, 2)
	s.add(t, wire.StreamAlarms, 1)
	s.deliver(t, cfg, a, sent)
	heads, err := s.db.Heads() // what the last status announced (last_seq, evidence_head)
	if err != nil {
		t.Fatal(err)
	}
	s.db.Close()
	if err := os.RemoveAll(cfg.Gateway.DataDir); err != nil { // the SD card dies
		t.Fatal(err)
	}

	if naive {
		b, err := readBackup(bytes.NewReader(backup.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		defer b.close()
		b.store.Seek(0, 0)
		os.MkdirAll(identity.Dir(cfg.Gateway.DataDir), 0o700)
		os.WriteFile(filepath.Join(identity.Dir(cfg.Gateway.DataDir), identity.KeyFile), b.key, 0o600)
		if err := badgerq.Restore(storeOptions(cfg, storeDir(cfg), nil), b.store); err != nil {
			t.Fatal(err)
		}
	} else {
		seen := map[string]uint64{}
		for name, h := range heads {
			seen[name] = h.Last
		}
		ev := heads[wire.StreamEvidence]
		rep, err := Restore(cfg, bytes.NewReader(backup.Bytes()), RestoreOptions{Seen: seen, EvidenceSeq: ev.Last, EvidenceHash: ev.State, Margin: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r := rep[wire.StreamTelemetry]; r.Backup != 5 || r.Known != 9 || r.GapFrom != 6 || r.GapTo != 19 || r.Next != 21 {
			t.Errorf("telemetry restore %+v, want backup 5, known 9, gap 6..19, next 21", r)
		}
		if r := rep[wire.StreamEvidence]; r.Backup != 3 || r.Next != 6 || r.GapTo != 0 {
			t.Errorf("evidence restore %+v, want backup 3, next 6, no gap", r)
		}
		if b, err := os.ReadFile(counter); err != nil || string(b) != "42\n" {
			t.Errorf("pulse counter after the restore: %q, %v; want the backup's 42", b, err)
		}
	}
	s = openStore(t, cfg)
	defer s.db.Close()
	s.add(t, wire.StreamTelemetry, 3)
	s.add(t, wire.StreamEvidence, 2)
	s.add(t, wire.StreamAlarms, 1)
	s.deliver(t, cfg, a, map[string]uint64{}) // the restored backlog again, then what is new
	return a.Report()
}

// TestRestoreTheAuditAccepts: after a restore from an online backup, the
// platform's audit (wire.Audit, signatures checked) finds no conflict, no
// missing seq and an unbroken evidence chain; restoring the store as it
// was instead makes the audit report reused seqs (conflicts) on telemetry
// and on evidence (a second record 4 and 5: the chain forked).
func TestRestoreTheAuditAccepts(t *testing.T) {
	if r := outage(t, false); !r.OK() {
		t.Fatalf("the platform's audit refuses what the gateway sent after the restore:\n%s", r)
	} else if s, _ := r.Stream("gw-restore", wire.StreamEvidence); !s.SigChecked || !s.ChainOK || s.MaxSeq != 7 {
		t.Fatalf("evidence after the restore: %+v", s)
	} else if s, _ := r.Stream("gw-restore", wire.StreamTelemetry); len(s.Covered) != 1 || s.Covered[0] != (wire.Range{From: 6, To: 19}) {
		t.Fatalf("telemetry after the restore: covered %v, want [6-19] (reported lost, not reused)", s.Covered)
	}
	r := outage(t, true)
	tel, _ := r.Stream("gw-restore", wire.StreamTelemetry)
	ev, _ := r.Stream("gw-restore", wire.StreamEvidence)
	if r.OK() || len(tel.Conflicts) == 0 || len(ev.Conflicts) == 0 {
		t.Fatalf("a naive restore should show reused seqs on telemetry and a fork on evidence; the audit says:\n%s", r)
	}
}

// TestRestoreRefuses: what would fork the chain or overwrite data.
func TestRestoreRefuses(t *testing.T) {
	cfg := restoreConfig(t)
	s := openStore(t, cfg)
	s.add(t, wire.StreamEvidence, 2)
	var backup bytes.Buffer
	if err := writeBackup(&backup, cfg, s.db, s.key.Path()); err != nil {
		t.Fatal(err)
	}
	s.add(t, wire.StreamEvidence, 1)
	heads, _ := s.db.Heads()
	s.db.Close()
	restore := func(o RestoreOptions) error {
		_, err := Restore(cfg, bytes.NewReader(backup.Bytes()), o)
		return err
	}
	if err := restore(RestoreOptions{}); !errors.Is(err, ErrRestore) {
		t.Errorf("restore over a store without --replace: %v, want ErrRestore", err)
	}
	// Replace: the current store says evidence 3 may have been sent.
	if err := restore(RestoreOptions{Replace: true}); !errors.Is(err, ErrRestore) {
		t.Errorf("restore behind the platform's evidence without its head: %v, want ErrRestore", err)
	}
	os.RemoveAll(storeDir(cfg))
	if err := restore(RestoreOptions{Seen: map[string]uint64{wire.StreamEvidence: 3}}); !errors.Is(err, ErrRestore) {
		t.Errorf("seen evidence 3, backup has 2, no head: %v, want ErrRestore", err)
	}
	bad := bytes.Repeat([]byte{7}, wire.HashSize)
	if err := restore(RestoreOptions{EvidenceSeq: 2, EvidenceHash: bad}); !errors.Is(err, ErrRestore) {
		t.Errorf("a head of seq 2 that is not the backup's record 2: %v, want ErrRestore", err)
	}
	if _, err := Restore(cfg, bytes.NewReader([]byte("not a backup")), RestoreOptions{}); !errors.Is(err, ErrBackup) {
		t.Errorf("garbage: %v, want ErrBackup", err)
	}
	ev := heads[wire.StreamEvidence]
	if err := restore(RestoreOptions{EvidenceSeq: ev.Last, EvidenceHash: ev.State}); err != nil {
		t.Errorf("with the platform's evidence head: %v", err)
	}
	// Another gateway's key in the data directory is never replaced.
	other := restoreConfig(t)
	other.Gateway.DataDir = cfg.Gateway.DataDir
	os.RemoveAll(storeDir(cfg))
	os.Remove(filepath.Join(identity.Dir(cfg.Gateway.DataDir), identity.KeyFile))
	if _, err := identity.Load(identity.Dir(cfg.Gateway.DataDir)); err != nil { // a new key
		t.Fatal(err)
	}
	if err := restore(RestoreOptions{EvidenceSeq: ev.Last, EvidenceHash: ev.State}); !errors.Is(err, ErrRestore) {
		t.Errorf("restore over another identity: %v, want ErrRestore", err)
	}
}

func FuzzReadBackup(f *testing.F) {
	f.Add([]byte("not a backup"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := readBackup(bytes.NewReader(data))
		if err == nil {
			b.close()
			return
		}
		if !errors.Is(err, ErrBackup) && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("error %v does not wrap ErrBackup", err)
		}
	})
}

// TestBackupHandler: a POST to the handler returns a backup of the running
// gateway's store and key that Restore reads; other methods are refused.
func TestBackupHandler(t *testing.T) {
	cfg := restoreConfig(t)
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.db.Close()
	h := g.BackupHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/backup", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET = %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/backup", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("POST = %d %v", rec.Code, rec.Header())
	}
	b, err := readBackup(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	key, _ := os.ReadFile(g.key.Path())
	if b.m.Gateway != "gw-restore" || !bytes.Equal(b.key, key) {
		t.Fatalf("backup of %q with key %v, want gw-restore and the gateway's key", b.m.Gateway, bytes.Equal(b.key, key))
	}
}

// A pulse counter already in the data directory is newer than the
// backup's and is kept; a missing one is restored.
func TestRestoreCountersKeepsNewer(t *testing.T) {
	cfg := restoreConfig(t)
	dir := filepath.Join(cfg.Gateway.DataDir, countersDir)
	os.MkdirAll(dir, 0o750)
	os.WriteFile(filepath.Join(dir, "a.count"), []byte("100\n"), 0o600)
	if err := restoreCounters(cfg, map[string][]byte{"a.count": []byte("90\n"), "b.count": []byte("7\n")}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.count"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.count"))
	if string(a) != "100\n" || string(b) != "7\n" {
		t.Fatalf("counters a=%q b=%q, want a kept at 100 and b restored as 7", a, b)
	}
}
