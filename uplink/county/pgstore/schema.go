package pgstore

import (
	"fmt"
	"strings"
)

// recordStreams are the streams with a table each, in the order their
// inserts run (a fixed order keeps concurrent commits from deadlocking).
var recordStreams = []string{"alarms", "events", "evidence", "telemetry"}

// recordTable is the DDL of one stream's records and their points.
const recordTable = `
CREATE TABLE IF NOT EXISTS %[1]s (
	gw          text        NOT NULL,
	seq         bigint      NOT NULL CHECK (seq > 0),
	county      char(6)     NOT NULL,
	township    char(9)     NOT NULL,
	dev         text        NOT NULL,
	kind        text        NOT NULL,
	ts          timestamptz NOT NULL,
	tsrc        text        NOT NULL,
	grid        text,
	q           bigint      NOT NULL DEFAULT 0,
	rec_hash    bytea       NOT NULL,
	received_at timestamptz NOT NULL,
	committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	%[2]s
	PRIMARY KEY (gw, seq)
);
CREATE INDEX IF NOT EXISTS %[1]s_township_ts ON %[1]s (township, ts);
CREATE TABLE IF NOT EXISTS %[1]s_points (
	gw   text   NOT NULL,
	seq  bigint NOT NULL,
	name text   NOT NULL,
	typ  text   NOT NULL CHECK (typ IN ('decimal', 'int', 'float', 'bool', 'text')),
	num  numeric,
	f    double precision,
	b    boolean,
	t    text,
	PRIMARY KEY (gw, seq, name)
);
`

// evidenceColumns are the evidence table's extra columns: the chain, the
// signature and the record's bytes as signed.
const evidenceColumns = `prev bytea NOT NULL, hash bytea NOT NULL, alg text, sig bytea,
	sig_checked boolean NOT NULL, raw bytea NOT NULL,`

const commonTables = `
CREATE TABLE IF NOT EXISTS gaps (
	gw       text   NOT NULL,
	stream   text   NOT NULL,
	seq      bigint NOT NULL,
	from_seq bigint NOT NULL,
	to_seq   bigint NOT NULL CHECK (from_seq <= to_seq AND to_seq < seq),
	reason   text   NOT NULL,
	PRIMARY KEY (gw, stream, seq)
);
CREATE TABLE IF NOT EXISTS conflicts (
	gw          text        NOT NULL,
	stream      text        NOT NULL,
	seq         bigint      NOT NULL,
	rec_hash    bytea       NOT NULL,
	county      char(6)     NOT NULL,
	township    char(9)     NOT NULL,
	raw         bytea       NOT NULL,
	received_at timestamptz NOT NULL,
	PRIMARY KEY (gw, stream, seq, rec_hash)
);
CREATE TABLE IF NOT EXISTS quarantine (LIKE conflicts INCLUDING ALL);
CREATE TABLE IF NOT EXISTS progress (
	gw       text    NOT NULL,
	stream   text    NOT NULL,
	county   char(6) NOT NULL,
	township char(9) NOT NULL,
	upto     bigint  NOT NULL,
	PRIMARY KEY (gw, stream)
);
CREATE TABLE IF NOT EXISTS status (
	gw        text PRIMARY KEY,
	county    char(6) NOT NULL,
	township  char(9) NOT NULL,
	ts        timestamptz NOT NULL,
	state     text NOT NULL,
	boot      text NOT NULL,
	version   text NOT NULL,
	backlog   jsonb NOT NULL,
	last_seq  jsonb NOT NULL,
	dropped   jsonb NOT NULL,
	raw       bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS announced (
	gw       text   NOT NULL,
	stream   text   NOT NULL,
	last_seq bigint NOT NULL,
	ts       timestamptz NOT NULL,
	PRIMARY KEY (gw, stream)
);
ALTER TABLE announced ADD COLUMN IF NOT EXISTS raw bytea;
CREATE TABLE IF NOT EXISTS audit (
	id     bigserial PRIMARY KEY,
	at     timestamptz NOT NULL DEFAULT clock_timestamp(),
	topic  text NOT NULL,
	gw     text NOT NULL,
	stream text NOT NULL,
	seq    bigint,
	kind   text NOT NULL,
	detail text NOT NULL
);
ALTER TABLE audit ADD COLUMN IF NOT EXISTS payload bytea;
CREATE TABLE IF NOT EXISTS ingest_counters (
	worker     text PRIMARY KEY,
	commits    bigint NOT NULL,
	inserted   bigint NOT NULL,
	duplicates bigint NOT NULL,
	conflicts  bigint NOT NULL,
	problems   bigint NOT NULL
);
`

// advanceFunc moves a stream's progress forward over the rows and gap
// records that follow it: it locks the progress row (so concurrent commits
// of one stream take turns; each sees what the others committed), walks the
// island of consecutive seqs after upto, jumps over gap-covered ranges, and
// stores and returns the new upto.
const advanceFunc = `
CREATE OR REPLACE FUNCTION townlink_advance(p_gw text, p_stream text, p_county text, p_township text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	u bigint;
	e bigint;
	g bigint;
	found_row boolean;
BEGIN
	INSERT INTO progress (gw, stream, county, township, upto)
		VALUES (p_gw, p_stream, p_county, p_township, 0) ON CONFLICT DO NOTHING;
	SELECT upto INTO u FROM progress WHERE gw = p_gw AND stream = p_stream FOR UPDATE;
	LOOP
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE gw = $1 AND seq = $2)', p_stream)
			INTO found_row USING p_gw, u + 1;
		IF found_row THEN
			EXECUTE format('SELECT a.seq FROM %I a WHERE a.gw = $1 AND a.seq > $2 AND NOT EXISTS '
				'(SELECT 1 FROM %I b WHERE b.gw = $1 AND b.seq = a.seq + 1) ORDER BY a.seq LIMIT 1',
				p_stream, p_stream) INTO e USING p_gw, u;
			u := e;
			CONTINUE;
		END IF;
		SELECT max(to_seq) INTO g FROM gaps
			WHERE gw = p_gw AND stream = p_stream AND from_seq <= u + 1 AND to_seq >= u + 1;
		EXIT WHEN g IS NULL;
		u := g;
	END LOOP;
	UPDATE progress SET upto = u WHERE gw = p_gw AND stream = p_stream;
	RETURN u;
END $$;
`

// Schema returns the whole DDL, idempotent (CREATE ... IF NOT EXISTS).
func Schema() string {
	var b strings.Builder
	for _, s := range recordStreams {
		extra := ""
		if s == "evidence" {
			extra = evidenceColumns
		}
		fmt.Fprintf(&b, recordTable, s, extra)
	}
	b.WriteString(commonTables)
	b.WriteString(advanceFunc)
	return b.String()
}
