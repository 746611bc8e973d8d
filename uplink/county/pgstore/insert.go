package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/wire"
)

type key struct {
	gw  string
	seq uint64
}

// insertStream inserts one stream's rows, their points and gap records; rows
// already stored are counted as duplicates, or audited as conflicts when
// their contents differ.
func insertStream(ctx context.Context, tx pgx.Tx, stream string, rows []row, res *county.Result) ([]county.Problem, error) {
	var problems []county.Problem
	var conflicting []row
	first := map[key]int{}
	uniq := rows[:0:0]
	for _, r := range rows {
		k := key{r.gw, r.rec.Seq}
		if i, ok := first[k]; ok {
			if p := compare(uniq[i], r.hash, res); p != nil {
				problems = append(problems, p...)
				conflicting = append(conflicting, r)
			}
			continue
		}
		first[k] = len(uniq)
		uniq = append(uniq, r)
	}
	inserted, err := insertRows(ctx, tx, stream, uniq)
	if err != nil {
		return nil, err
	}
	var again []row
	var fresh []row
	for _, r := range uniq {
		if inserted[key{r.gw, r.rec.Seq}] {
			fresh = append(fresh, r)
		} else {
			again = append(again, r)
		}
	}
	res.Inserted += len(fresh)
	p, c, err := checkExisting(ctx, tx, stream, again, res)
	if err != nil {
		return nil, err
	}
	problems = append(problems, p...)
	if err := insertConflicts(ctx, tx, stream, append(conflicting, c...)); err != nil {
		return nil, fmt.Errorf("conflicts: %w", err)
	}
	if err := insertPoints(ctx, tx, stream, fresh); err != nil {
		return nil, fmt.Errorf("points: %w", err)
	}
	if err := insertGaps(ctx, tx, stream, fresh); err != nil {
		return nil, fmt.Errorf("gaps: %w", err)
	}
	return problems, nil
}

// compare counts a second copy of a record as a duplicate, or reports it as
// a conflict when its contents differ.
func compare(stored row, hash [32]byte, res *county.Result) []county.Problem {
	if stored.hash == hash {
		res.Duplicates++
		return nil
	}
	res.Conflicts++
	return []county.Problem{{
		Topic: wire.Topic(stored.county, stored.township, stored.gw, stored.stream),
		GW:    stored.gw, Stream: stored.stream, Seq: stored.rec.Seq, Kind: county.ProblemConflict,
		Detail: "seq received again with different contents; the first copy is kept, this one in conflicts",
	}}
}

// insertQuarantined keeps the records the ingest refused to store as rows
// (evidence that failed its chain or signature check), as encoded.
func insertQuarantined(ctx context.Context, tx pgx.Tx, batches []county.Batch) error {
	for stream, rows := range prepareBatches(batches) {
		if err := insertKept(ctx, tx, "quarantine", stream, rows); err != nil {
			return err
		}
	}
	return nil
}

// insertConflicts keeps the copies of seqs that differ from the stored
// row, as encoded: the county acknowledges the seq, so the gateway deletes
// its copy, and a conflicting copy (a gateway whose store was wiped reuses
// seqs) may be the genuine one.
func insertConflicts(ctx context.Context, tx pgx.Tx, stream string, rows []row) error {
	return insertKept(ctx, tx, "conflicts", stream, rows)
}

// insertKept writes rows, as encoded, to table (conflicts or quarantine).
func insertKept(ctx context.Context, tx pgx.Tx, table, stream string, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	gw, cty, twp := make([]string, n), make([]string, n), make([]string, n)
	seq := make([]int64, n)
	hash, raw := make([][]byte, n), make([][]byte, n)
	recv := make([]time.Time, n)
	for i, r := range rows {
		gw[i], cty[i], twp[i], seq[i] = r.gw, r.county, r.township, int64(r.rec.Seq)
		hash[i], raw[i], recv[i] = r.hash[:], r.enc, r.received
		if raw[i] == nil {
			raw[i] = []byte{}
		}
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (gw, stream, seq, rec_hash, county, township, raw, received_at)
		SELECT gw, $8, seq, h, c, t, raw, rcv FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::text[], $6::bytea[], $7::timestamptz[])
		AS u(gw, seq, h, c, t, raw, rcv) ON CONFLICT DO NOTHING`, pgx.Identifier{table}.Sanitize()), gw, seq, hash, cty, twp, raw, recv, stream)
	return err
}

func insertRows(ctx context.Context, tx pgx.Tx, stream string, rows []row) (map[key]bool, error) {
	n := len(rows)
	gw, cty, twp, dev, kind, tsrc := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seq, q := make([]int64, n), make([]int64, n)
	ts, recv := make([]time.Time, n), make([]time.Time, n)
	grid := make([]*string, n)
	hash := make([][]byte, n)
	for i, r := range rows {
		gw[i], cty[i], twp[i], dev[i], kind[i], tsrc[i] = r.gw, r.county, r.township, r.rec.Dev, r.rec.Kind, r.rec.TSrc
		seq[i], q[i] = int64(r.rec.Seq), int64(r.rec.Q)
		ts[i], recv[i] = time.UnixMilli(r.rec.TS), r.received
		if r.rec.Grid != "" {
			grid[i] = &r.rec.Grid
		}
		hash[i] = r.hash[:]
	}
	cols := "gw, seq, county, township, dev, kind, ts, tsrc, grid, q, rec_hash, received_at"
	args := []any{gw, seq, cty, twp, dev, kind, ts, tsrc, grid, q, hash, recv}
	types := "$1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::bigint[], $11::bytea[], $12::timestamptz[]"
	if stream == "evidence" {
		prev, h, sig, raw := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		alg := make([]*string, n)
		checked := make([]bool, n)
		for i, r := range rows {
			prev[i], h[i], sig[i], raw[i], checked[i] = r.rec.Prev, r.rec.Hash, r.rec.Sig, r.enc, r.sigChecked
			if r.rec.Alg != "" {
				alg[i] = &r.rec.Alg
			}
		}
		cols += ", prev, hash, alg, sig, sig_checked, raw"
		args = append(args, prev, h, alg, sig, checked, raw)
		types += ", $13::bytea[], $14::bytea[], $15::text[], $16::bytea[], $17::bool[], $18::bytea[]"
	}
	sql := fmt.Sprintf("INSERT INTO %s (%s) SELECT * FROM unnest(%s) ON CONFLICT (gw, seq) DO NOTHING RETURNING gw, seq",
		pgx.Identifier{stream}.Sanitize(), cols, types)
	got, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	inserted := map[key]bool{}
	var g string
	var s int64
	_, err = pgx.ForEachRow(got, []any{&g, &s}, func() error {
		inserted[key{g, uint64(s)}] = true
		return nil
	})
	return inserted, err
}

// checkExisting compares records that were already stored with the stored
// copy's hash; it returns the conflicts' problems and rows.
func checkExisting(ctx context.Context, tx pgx.Tx, stream string, rows []row, res *county.Result) ([]county.Problem, []row, error) {
	if len(rows) == 0 {
		return nil, nil, nil
	}
	gw, seq := make([]string, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		gw[i], seq[i] = r.gw, int64(r.rec.Seq)
	}
	sql := fmt.Sprintf("SELECT t.gw, t.seq, t.rec_hash FROM %s t JOIN unnest($1::text[], $2::bigint[]) u(gw, seq) USING (gw, seq)",
		pgx.Identifier{stream}.Sanitize())
	got, err := tx.Query(ctx, sql, gw, seq)
	if err != nil {
		return nil, nil, err
	}
	stored := map[key][]byte{}
	var g string
	var s int64
	var h []byte
	if _, err := pgx.ForEachRow(got, []any{&g, &s, &h}, func() error {
		stored[key{g, uint64(s)}] = bytes.Clone(h)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	var problems []county.Problem
	var conflicting []row
	for _, r := range rows {
		if h, ok := stored[key{r.gw, r.rec.Seq}]; ok && !bytes.Equal(h, r.hash[:]) {
			res.Conflicts++
			problems = append(problems, county.Problem{
				Topic: wire.Topic(r.county, r.township, r.gw, r.stream), GW: r.gw, Stream: r.stream,
				Seq: r.rec.Seq, Kind: county.ProblemConflict,
				Detail: "seq received again with different contents; the first copy is kept, this one in conflicts",
			})
			conflicting = append(conflicting, r)
			continue
		}
		res.Duplicates++
	}
	return problems, conflicting, nil
}

// insertPoints writes each record's points: decimals and ints exactly as
// numeric, floats as double precision, bools and texts as such.
func insertPoints(ctx context.Context, tx pgx.Tx, stream string, rows []row) error {
	var gw, name, typ []string
	var seq []int64
	var num, txt []*string
	var f []*float64
	var b []*bool
	for _, r := range rows {
		names := make([]string, 0, len(r.rec.Vals))
		for n := range r.rec.Vals {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t, nv, fv, bv, tv := point(r.rec.Vals[n])
			gw, seq, name, typ = append(gw, r.gw), append(seq, int64(r.rec.Seq)), append(name, n), append(typ, t)
			num, f, b, txt = append(num, nv), append(f, fv), append(b, bv), append(txt, tv)
		}
	}
	if len(gw) == 0 {
		return nil
	}
	sql := fmt.Sprintf(`INSERT INTO %s (gw, seq, name, typ, num, f, b, t)
		SELECT gw, seq, name, typ, num::numeric, f, b, t FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[],
		$5::text[], $6::float8[], $7::bool[], $8::text[]) AS u(gw, seq, name, typ, num, f, b, t)
		ON CONFLICT DO NOTHING`, pgx.Identifier{stream + "_points"}.Sanitize())
	_, err := tx.Exec(ctx, sql, gw, seq, name, typ, num, f, b, txt)
	return err
}

// point maps a wire value onto the points table's columns.
func point(v wire.Value) (typ string, num *string, f *float64, b *bool, t *string) {
	switch v.Kind() {
	case wire.KindDecimal:
		mant, exp, _ := v.Decimal()
		s := DecimalText(mant, exp)
		return "decimal", &s, nil, nil, nil
	case wire.KindInt:
		i, _ := v.AsInt()
		s := strconv.FormatInt(i, 10)
		return "int", &s, nil, nil, nil
	case wire.KindFloat:
		x, _ := v.AsFloat()
		return "float", nil, &x, nil, nil
	case wire.KindBool:
		x, _ := v.AsBool()
		return "bool", nil, nil, &x, nil
	default:
		x, _ := v.AsText()
		return "text", nil, nil, nil, &x
	}
}

// DecimalText writes mant × 10^exp as numeric text, exactly: (12345678, -2)
// is "123456.78", (5, 2) is "500", (-5, -3) is "-0.005".
func DecimalText(mant int64, exp int32) string {
	neg := mant < 0
	digits := strconv.FormatUint(absU(mant), 10)
	switch {
	case exp >= 0:
		digits += zeros(int(exp))
	case int(-exp) < len(digits):
		k := len(digits) + int(exp)
		digits = digits[:k] + "." + digits[k:]
	default:
		digits = "0." + zeros(int(-exp)-len(digits)) + digits
	}
	if neg {
		return "-" + digits
	}
	return digits
}

func absU(m int64) uint64 {
	if m < 0 {
		return uint64(-(m + 1)) + 1
	}
	return uint64(m)
}

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

// insertGaps records the ranges the gap records among rows cover.
func insertGaps(ctx context.Context, tx pgx.Tx, stream string, rows []row) error {
	var gw, reason []string
	var seq, from, to []int64
	for _, r := range rows {
		if r.rec.Kind != wire.KindGap {
			continue
		}
		fr, t, ok := wire.GapRange(r.rec)
		if !ok {
			continue
		}
		why, _ := r.rec.Vals["reason"].AsText()
		gw, seq, from, to, reason = append(gw, r.gw), append(seq, int64(r.rec.Seq)), append(from, int64(fr)), append(to, int64(t)), append(reason, why)
	}
	if len(gw) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO gaps (gw, stream, seq, from_seq, to_seq, reason)
		SELECT gw, $6, seq, f, t, r FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) AS u(gw, seq, f, t, r)
		ON CONFLICT DO NOTHING`, gw, seq, from, to, reason, stream)
	return err
}

// storeStatuses keeps each gateway's newest status and the highest last_seq
// announced per stream; a last_seq lower than an earlier status's (by ts) is
// audited as a rollback.
func storeStatuses(ctx context.Context, tx pgx.Tx, sts []county.Status) ([]county.Problem, error) {
	var problems []county.Problem
	for _, s := range sts {
		ts := time.UnixMilli(s.TS)
		backlog, _ := json.Marshal(s.Backlog)
		last, _ := json.Marshal(s.LastSeq)
		dropped, _ := json.Marshal(s.Dropped)
		raw, err := wire.EncodeStatus(s.Status)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO status AS s (gw, county, township, ts, state, boot, version, backlog, last_seq, dropped, raw)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (gw) DO UPDATE SET
			county = $2, township = $3, ts = $4, state = $5, boot = $6, version = $7, backlog = $8, last_seq = $9, dropped = $10, raw = $11
			WHERE s.ts <= $4`, s.GW, s.County, s.Township, ts, s.State, s.Boot, s.Version, backlog, last, dropped, raw); err != nil {
			return nil, err
		}
		streams := make([]string, 0, len(s.LastSeq))
		for st := range s.LastSeq {
			streams = append(streams, st)
		}
		sort.Strings(streams)
		for _, st := range streams {
			n := s.LastSeq[st]
			var prev int64
			var prevTS time.Time
			err := tx.QueryRow(ctx, `SELECT last_seq, ts FROM announced WHERE gw = $1 AND stream = $2 FOR UPDATE`, s.GW, st).Scan(&prev, &prevTS)
			switch {
			case err == pgx.ErrNoRows:
			case err != nil:
				return nil, err
			case uint64(prev) > n && ts.After(prevTS):
				problems = append(problems, county.Problem{
					Topic: wire.Topic(s.County, s.Township, s.GW, wire.StreamStatus), GW: s.GW, Stream: st, Seq: n,
					Kind: county.ProblemRollback, Detail: fmt.Sprintf("last_seq %d announced after %d: the gateway's store went back", n, prev),
				})
			case uint64(prev) < n && ts.Before(prevTS):
				// Arrived late: the status of prevTS, later than this one,
				// announced at most prev, less than this one.
				problems = append(problems, county.Problem{
					Topic: wire.Topic(s.County, s.Township, s.GW, wire.StreamStatus), GW: s.GW, Stream: st, Seq: n,
					Kind: county.ProblemRollback, Detail: fmt.Sprintf("last_seq %d announced before a status of %s announced at most %d: the gateway's store went back", n, prevTS.UTC().Format(time.RFC3339Nano), prev),
				})
			}
			if _, err := tx.Exec(ctx, `INSERT INTO announced AS a (gw, stream, last_seq, ts, raw) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (gw, stream) DO UPDATE SET last_seq = greatest(a.last_seq, $3), ts = greatest(a.ts, $4),
				raw = CASE WHEN a.raw IS NULL OR $3 > a.last_seq THEN $5 ELSE a.raw END`,
				s.GW, st, int64(n), ts, raw); err != nil {
				return nil, err
			}
		}
	}
	return problems, nil
}

func insertProblems(ctx context.Context, tx pgx.Tx, ps []county.Problem) error {
	if len(ps) == 0 {
		return nil
	}
	n := len(ps)
	topic, gw, stream, kind, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seq := make([]*int64, n)
	payload := make([][]byte, n)
	for i, p := range ps {
		topic[i], gw[i], stream[i], kind[i], detail[i], payload[i] = p.Topic, p.GW, p.Stream, p.Kind, p.Detail, p.Payload
		if p.Seq > 0 {
			s := int64(p.Seq)
			seq[i] = &s
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit (topic, gw, stream, seq, kind, detail, payload)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bytea[])`,
		topic, gw, stream, seq, kind, detail, payload)
	return err
}

// advance moves the progress of every (gw, stream) the batches touched, in
// sorted order (the progress rows are locked in that order).
func advance(ctx context.Context, tx pgx.Tx, batches []county.Batch) ([]county.Progress, error) {
	seen := map[[2]string]county.Progress{}
	for _, b := range batches {
		seen[[2]string{b.GW, b.Stream}] = county.Progress{County: b.County, Township: b.Township, GW: b.GW, Stream: b.Stream}
	}
	keys := make([][2]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	// One round trip for all of them: the calls run in this order.
	var b pgx.Batch
	out := make([]county.Progress, 0, len(keys))
	for _, k := range keys {
		p := seen[k]
		b.Queue("SELECT townlink_advance($1, $2, $3, $4)", p.GW, p.Stream, p.County, p.Township)
		out = append(out, p)
	}
	br := tx.SendBatch(ctx, &b)
	for i := range out {
		var upto int64
		if err := br.QueryRow().Scan(&upto); err != nil {
			br.Close()
			return nil, err
		}
		out[i].Upto = uint64(upto)
	}
	return out, br.Close()
}
