// Package pgstore is the county's PostgreSQL store (county.Store): one table
// per record stream (telemetry, events, alarms, evidence) keyed by (gw, seq),
// with the admin codes from the topic and the grid as columns, the points in
// a <stream>_points table (exact decimals as numeric), gap records in gaps,
// every problem in audit, the copies of a seq that differ from its stored
// row in conflicts, evidence that failed its chain or signature check in
// quarantine, and each stream's acknowledged progress in progress. Inserts are batched (unnest arrays) and idempotent (ON CONFLICT
// DO NOTHING): a duplicate delivery never makes a second row.
//
// docs/county.md describes the schema for the people who query it.
package pgstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/wire"
)

// Errors of this package.
var (
	ErrOpen   = errors.New("pgstore: open failed")
	ErrCommit = errors.New("pgstore: commit failed")
	ErrQuery  = errors.New("pgstore: query failed")
)

// maxAttempts bounds the retries of a commit that lost a deadlock or
// serialization race against another worker.
const maxAttempts = 8

// Store is a county.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	worker string
	log    *slog.Logger
}

var _ county.Store = (*Store)(nil)

// Open connects to dsn and creates the schema if it is missing. worker names
// this ingest worker in ingest_counters (one row each).
func Open(ctx context.Context, dsn, worker string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	s := &Store{pool: pool, worker: worker, log: log}
	if err := s.createSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// createSchema runs the DDL under an advisory lock, so that workers starting
// together do not race on CREATE ... IF NOT EXISTS.
func (s *Store) createSchema(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7245001)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, Schema())
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: schema: %w", ErrOpen, err)
	}
	return nil
}

// Pool is the connection pool, for reports and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Commit stores c in one transaction, retrying it when it lost a deadlock or
// serialization race against another worker.
func (s *Store) Commit(ctx context.Context, c *county.Commit) (*county.Result, error) {
	rows := prepare(c)
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		var res *county.Result
		res, err = s.commitOnce(ctx, c, rows)
		if err == nil {
			return res, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
		s.log.Debug("commit retried", "attempt", attempt, "err", err)
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
	return nil, fmt.Errorf("%w: %w", ErrCommit, err)
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (s *Store) commitOnce(ctx context.Context, c *county.Commit, rows map[string][]row) (*county.Result, error) {
	res := &county.Result{}
	problems := append([]county.Problem(nil), c.Problems...)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, stream := range recordStreams {
			if len(rows[stream]) == 0 {
				continue
			}
			p, err := insertStream(ctx, tx, stream, rows[stream], res)
			if err != nil {
				return fmt.Errorf("%s: %w", stream, err)
			}
			problems = append(problems, p...)
		}
		if err := insertQuarantined(ctx, tx, c.Quarantined); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		p, err := storeStatuses(ctx, tx, c.Statuses)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		problems = append(problems, p...)
		if err := insertProblems(ctx, tx, problems); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		res.Problems = len(problems)
		if res.Progress, err = advance(ctx, tx, c.Batches); err != nil {
			return fmt.Errorf("progress: %w", err)
		}
		return s.count(ctx, tx, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Store) count(ctx context.Context, tx pgx.Tx, r *county.Result) error {
	_, err := tx.Exec(ctx, `INSERT INTO ingest_counters AS c (worker, commits, inserted, duplicates, conflicts, problems)
		VALUES ($1, 1, $2, $3, $4, $5) ON CONFLICT (worker) DO UPDATE SET
		commits = c.commits + 1, inserted = c.inserted + $2, duplicates = c.duplicates + $3,
		conflicts = c.conflicts + $4, problems = c.problems + $5`,
		s.worker, r.Inserted, r.Duplicates, r.Conflicts, r.Problems)
	return err
}

// row is one record ready for its table.
type row struct {
	county, township, gw, stream string
	rec                          *wire.Record
	enc                          []byte
	hash                         [32]byte
	received                     time.Time
	sigChecked                   bool
}

// prepare encodes every record once (its hash tells a duplicate from a
// conflicting copy) and groups them by stream, sorted by (gw, seq) so that
// concurrent commits take row locks in the same order.
func prepare(c *county.Commit) map[string][]row {
	return prepareBatches(c.Batches)
}

func prepareBatches(batches []county.Batch) map[string][]row {
	out := map[string][]row{}
	for _, b := range batches {
		for i := range b.Recs {
			r := &b.Recs[i]
			enc, err := wire.EncodeRecord(r)
			if err != nil {
				// Decode validated it; encoding cannot fail. Keep the
				// record anyway, hashed over nothing, rather than lose it.
				enc = nil
			}
			out[b.Stream] = append(out[b.Stream], row{
				county: b.County, township: b.Township, gw: b.GW, stream: b.Stream,
				rec: r, enc: enc, hash: sha256.Sum256(enc), received: b.Received, sigChecked: b.SigChecked,
			})
		}
	}
	for _, rs := range out {
		sort.SliceStable(rs, func(i, j int) bool {
			if rs[i].gw != rs[j].gw {
				return rs[i].gw < rs[j].gw
			}
			return rs[i].rec.Seq < rs[j].rec.Seq
		})
	}
	return out
}
