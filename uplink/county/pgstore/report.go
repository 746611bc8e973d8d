package pgstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Summary is what the store holds, for `townlink-county report`.
type Summary struct {
	Rows        map[string]int64 // stream → records stored
	Gateways    int64            // gateways with at least one record
	Commits     int64            // ingest commits, all workers
	Inserted    int64            // records stored (sum of the workers' counters)
	Duplicates  int64            // deliveries of records already stored: removed
	Conflicts   int64            // copies of a seq with different contents: audited, first kept
	Problems    map[string]int64 // audit kind → rows
	Gaps        int64            // gap records
	Covered     int64            // seqs reported discarded by gap records
	Behind      int64            // (gateway, stream)s whose progress is below their highest seq: a hole still open
	Tail        int64            // (gateway, stream)s whose status announced more than was received
	ChainBreaks int64            // evidence rows whose prev is not the hash of the row before
}

// Summary computes the store's Summary.
func (s *Store) Summary(ctx context.Context) (*Summary, error) {
	r := &Summary{Rows: map[string]int64{}, Problems: map[string]int64{}}
	q := func(sql string, dst ...any) error {
		if err := s.pool.QueryRow(ctx, sql).Scan(dst...); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrQuery, strings.Fields(sql)[0:2], err)
		}
		return nil
	}
	var union []string
	for _, st := range recordStreams {
		var n int64
		if err := q(fmt.Sprintf("SELECT count(*) FROM %s", st), &n); err != nil {
			return nil, err
		}
		r.Rows[st] = n
		union = append(union, fmt.Sprintf("SELECT gw, '%s' AS stream, max(seq) AS m FROM %s GROUP BY gw", st, st))
	}
	if err := q("SELECT count(DISTINCT gw) FROM ("+strings.Join(union, " UNION ALL ")+") x", &r.Gateways); err != nil {
		return nil, err
	}
	if err := q(`SELECT coalesce(sum(commits),0), coalesce(sum(inserted),0), coalesce(sum(duplicates),0), coalesce(sum(conflicts),0)
		FROM ingest_counters WHERE worker <> 'report'`, &r.Commits, &r.Inserted, &r.Duplicates, &r.Conflicts); err != nil {
		return nil, err
	}
	if err := q("SELECT count(*), coalesce(sum(to_seq - from_seq + 1), 0) FROM gaps", &r.Gaps, &r.Covered); err != nil {
		return nil, err
	}
	if err := q(`SELECT count(*) FROM (`+strings.Join(union, " UNION ALL ")+`) x JOIN progress p USING (gw, stream) WHERE p.upto < x.m`, &r.Behind); err != nil {
		return nil, err
	}
	if err := q(`SELECT count(*) FROM announced a LEFT JOIN progress p USING (gw, stream) WHERE a.last_seq > coalesce(p.upto, 0)`, &r.Tail); err != nil {
		return nil, err
	}
	if err := q(`SELECT count(*) FROM evidence a JOIN evidence b ON b.gw = a.gw AND b.seq = a.seq + 1 WHERE b.prev <> a.hash`, &r.ChainBreaks); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT kind, count(*) FROM audit GROUP BY kind")
	if err != nil {
		return nil, fmt.Errorf("%w: audit: %w", ErrQuery, err)
	}
	var kind string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&kind, &n}, func() error { r.Problems[kind] = n; return nil }); err != nil {
		return nil, fmt.Errorf("%w: audit: %w", ErrQuery, err)
	}
	return r, nil
}

// String is the report `townlink-county report` prints.
func (r *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gateways            %d\n", r.Gateways)
	for _, st := range recordStreams {
		fmt.Fprintf(&b, "rows %-14s %d\n", st, r.Rows[st])
	}
	fmt.Fprintf(&b, "commits             %d\ninserted            %d\nduplicates removed  %d\nconflicts           %d\n",
		r.Commits, r.Inserted, r.Duplicates, r.Conflicts)
	fmt.Fprintf(&b, "gap records         %d (covering %d seqs)\nstreams with a hole %d\nstreams short of their status %d\nevidence chain breaks %d\n",
		r.Gaps, r.Covered, r.Behind, r.Tail, r.ChainBreaks)
	kinds := make([]string, 0, len(r.Problems))
	for k := range r.Problems {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "audit %-13s %d\n", k, r.Problems[k])
	}
	return b.String()
}

// Account is, for one (gateway, stream), the gateway's committed records
// held against the store.
type Account struct {
	GW, Stream string
	Committed  uint64   // the gateway's last seq
	Rows       uint64   // seqs 1..Committed stored as rows
	Covered    uint64   // seqs 1..Committed not stored but covered by a gap record
	Missing    []uint64 // seqs 1..Committed neither stored nor covered, ascending
}

// Account compares what a gateway committed (seqs 1..last of stream) with
// the store: every seq must be a row or covered by a gap record. A missing
// seq is lost unless the gateway still holds it in its outbox.
func (s *Store) Account(ctx context.Context, gw, stream string, last uint64) (*Account, error) {
	a := &Account{GW: gw, Stream: stream, Committed: last}
	if last == 0 {
		return a, nil
	}
	t := pgx.Identifier{stream}.Sanitize()
	var rows, covered int64
	err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[1]s WHERE gw = $1 AND seq <= $3),
		(SELECT count(*) FROM generate_series(1, $3::bigint) s(seq)
			WHERE NOT EXISTS (SELECT 1 FROM %[1]s t WHERE t.gw = $1 AND t.seq = s.seq)
			AND EXISTS (SELECT 1 FROM gaps g WHERE g.gw = $1 AND g.stream = $2 AND s.seq BETWEEN g.from_seq AND g.to_seq))`, t),
		gw, stream, int64(last)).Scan(&rows, &covered)
	if err != nil {
		return nil, fmt.Errorf("%w: account %s/%s: %w", ErrQuery, gw, stream, err)
	}
	a.Rows, a.Covered = uint64(rows), uint64(covered)
	if a.Rows+a.Covered == last {
		return a, nil
	}
	got, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT s.seq FROM generate_series(1, $3::bigint) s(seq)
		WHERE NOT EXISTS (SELECT 1 FROM %[1]s t WHERE t.gw = $1 AND t.seq = s.seq)
		AND NOT EXISTS (SELECT 1 FROM gaps g WHERE g.gw = $1 AND g.stream = $2 AND s.seq BETWEEN g.from_seq AND g.to_seq)
		ORDER BY s.seq`, t), gw, stream, int64(last))
	if err != nil {
		return nil, fmt.Errorf("%w: account %s/%s: %w", ErrQuery, gw, stream, err)
	}
	var q int64
	if _, err := pgx.ForEachRow(got, []any{&q}, func() error { a.Missing = append(a.Missing, uint64(q)); return nil }); err != nil {
		return nil, fmt.Errorf("%w: account %s/%s: %w", ErrQuery, gw, stream, err)
	}
	return a, nil
}

// Latency returns the quantiles q (0..1) of the time from a record's
// reading (ts) to its committed row, over the telemetry records read in
// [from, to), and how many there were.
func (s *Store) Latency(ctx context.Context, from, to time.Time, q ...float64) ([]time.Duration, int64, error) {
	var secs []float64
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(percentile_cont($3::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - ts)), $4::float8[]), count(*)
		FROM telemetry WHERE ts >= $1 AND ts < $2`, from, to, q, make([]float64, len(q))).Scan(&secs, &n)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: latency: %w", ErrQuery, err)
	}
	out := make([]time.Duration, len(secs))
	for i, x := range secs {
		out[i] = time.Duration(x * float64(time.Second))
	}
	return out, n, nil
}
