package pgstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/townlink/townlink/uplink/wire"
)

// AuditEvidence runs the contract's own audit (wire.Audit) over what the
// store holds: every gateway's evidence records as signed (the raw column),
// from seq 1, with its registered key (keys as county.ParseKeys returns
// them, "" for every gateway without its own), held against the gateway's
// newest status and the one that announced its highest evidence last_seq
// (their announced evidence last_seq and signed head). Conflicting copies
// kept in conflicts are reported as conflicts. The
// ingest checked each batch on arrival; this checks the whole chain across
// batches, as it is stored. It returns the evidence streams' reports.
func (s *Store) AuditEvidence(ctx context.Context, keys map[string]wire.Verifier) ([]wire.StreamReport, error) {
	a := wire.NewAudit()
	for gw, k := range keys {
		a.TrustKey(gw, k)
	}
	// The stored rows first, then the conflicting copies (audited as
	// conflicts: a gateway that signed two records of one seq).
	rows, err := s.pool.Query(ctx, `SELECT gw, raw FROM (SELECT gw, raw, 0 AS k, seq FROM evidence
		UNION ALL SELECT gw, raw, 1, seq FROM conflicts WHERE stream = 'evidence') x ORDER BY k, gw, seq`)
	if err != nil {
		return nil, fmt.Errorf("%w: evidence: %w", ErrQuery, err)
	}
	var gw string
	var raw []byte
	batch := &wire.Batch{V: wire.Version, Stream: wire.StreamEvidence}
	flush := func() {
		if len(batch.Recs) > 0 {
			a.Add(batch)
		}
		batch = &wire.Batch{V: wire.Version, Stream: wire.StreamEvidence}
	}
	if _, err := pgx.ForEachRow(rows, []any{&gw, &raw}, func() error {
		if gw != batch.GW {
			flush()
			batch.GW = gw
		}
		r, err := wire.DecodeRecord(bytes.Clone(raw))
		if err != nil {
			return fmt.Errorf("stored evidence of %s does not decode: %w", gw, err)
		}
		batch.Recs = append(batch.Recs, *r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%w: evidence: %w", ErrQuery, err)
	}
	flush()
	if err := s.auditStatuses(ctx, a); err != nil {
		return nil, err
	}
	var out []wire.StreamReport
	for _, sr := range a.Report().Streams {
		if sr.Stream == wire.StreamEvidence {
			out = append(out, sr)
		}
	}
	return out, nil
}

// auditStatuses adds each gateway's newest status and the status that
// announced its highest evidence last_seq (when it is another: an old
// status replayed with a newer ts must not hide a cut tail), reduced to
// their evidence announcement (the other streams are not in this audit).
func (s *Store) auditStatuses(ctx context.Context, a *wire.Audit) error {
	rows, err := s.pool.Query(ctx, `SELECT s.raw FROM status s UNION ALL
		SELECT a.raw FROM announced a JOIN status s USING (gw)
		WHERE a.stream = 'evidence' AND a.raw IS NOT NULL AND a.raw <> s.raw`)
	if err != nil {
		return fmt.Errorf("%w: status: %w", ErrQuery, err)
	}
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
		st, err := wire.DecodeStatus(bytes.Clone(raw))
		if err != nil {
			return err
		}
		n, ok := st.LastSeq[wire.StreamEvidence]
		if !ok {
			return nil
		}
		st.LastSeq = map[string]uint64{wire.StreamEvidence: n}
		a.AddStatus(st)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: status: %w", ErrQuery, err)
	}
	return nil
}
