package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
)

// tcpServer is an in-process Modbus TCP peer whose answer to each request
// is decided by reply (nil: stay silent until the connection closes).
type tcpServer struct {
	ln      net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newTCPServer(t *testing.T, reply func(conn int, tid uint16, unit byte, pdu []byte) [][]byte) *tcpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.accepts.Add(1))
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				for {
					var h [MBAPHeaderLen]byte
					if _, err := io.ReadFull(c, h[:]); err != nil {
						return
					}
					tid, unit, n2, err := ParseMBAP(h[:])
					if err != nil {
						t.Errorf("server: %v", err)
						return
					}
					pdu := make([]byte, n2)
					if _, err := io.ReadFull(c, pdu); err != nil {
						return
					}
					for _, f := range reply(n, tid, unit, pdu) {
						if _, err := c.Write(f); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *tcpServer) transport(timeout time.Duration) *TCP {
	var d net.Dialer
	return NewTCP(func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", s.ln.Addr().String())
	}, timeout)
}

func TestTCPDropsStaleTransaction(t *testing.T) {
	srv := newTCPServer(t, func(_ int, tid uint16, unit byte, pdu []byte) [][]byte {
		return [][]byte{
			AppendMBAP(nil, tid-1, unit, []byte{3, 2, 0xDE, 0xAD}), // a late reply to an earlier request
			AppendMBAP(nil, tid, unit, []byte{3, 2, 0, 42}),
		}
	})
	tr := srv.transport(5 * time.Second)
	defer tr.Close()
	for range 3 {
		rep, err := Do(context.Background(), tr, 1, ReadHoldingRegisters(0, 1))
		if err != nil || rep.Registers[0] != 42 {
			t.Fatalf("%v %v", rep, err)
		}
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 reused", n)
	}
}

func TestTCPTimeoutThenReconnect(t *testing.T) {
	srv := newTCPServer(t, func(conn int, tid uint16, unit byte, pdu []byte) [][]byte {
		if conn == 1 {
			return nil // first connection: silent
		}
		return [][]byte{AppendMBAP(nil, tid, unit, []byte{3, 2, 0, 7})}
	})
	tr := srv.transport(200 * time.Millisecond)
	defer tr.Close()
	_, err := Do(context.Background(), tr, 1, ReadHoldingRegisters(0, 1))
	if !errors.Is(err, drivers.ErrTimeout) {
		t.Fatalf("silent server: %v", err)
	}
	rep, err := Do(context.Background(), tr, 1, ReadHoldingRegisters(0, 1))
	if err != nil || rep.Registers[0] != 7 {
		t.Fatalf("after reconnect: %v %v", rep, err)
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestTCPContextCancel(t *testing.T) {
	srv := newTCPServer(t, func(int, uint16, byte, []byte) [][]byte { return nil })
	tr := srv.transport(time.Minute)
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(50*time.Millisecond, cancel)
	defer stop.Stop()
	if _, err := Do(ctx, tr, 1, ReadHoldingRegisters(0, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := Do(ctx, tr, 1, ReadHoldingRegisters(0, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestTCPReplyErrors(t *testing.T) {
	cases := []struct {
		name  string
		reply func(tid uint16, unit byte) []byte
		want  error
	}{
		{"exception", func(tid uint16, unit byte) []byte { return AppendMBAP(nil, tid, unit, []byte{0x83, 0x02}) }, ErrIllegalDataAddress},
		{"wrong unit", func(tid uint16, unit byte) []byte { return AppendMBAP(nil, tid, unit+1, []byte{3, 2, 0, 1}) }, ErrWrongUnit},
		{"wrong function", func(tid uint16, unit byte) []byte { return AppendMBAP(nil, tid, unit, []byte{4, 2, 0, 1}) }, ErrFunction},
		{"byte count", func(tid uint16, unit byte) []byte { return AppendMBAP(nil, tid, unit, []byte{3, 4, 0, 1, 0, 2}) }, ErrLength},
		{"protocol id", func(tid uint16, unit byte) []byte {
			f := AppendMBAP(nil, tid, unit, []byte{3, 2, 0, 1})
			binary.BigEndian.PutUint16(f[2:], 1)
			return f
		}, ErrMBAP},
	}
	for _, c := range cases {
		srv := newTCPServer(t, func(_ int, tid uint16, unit byte, _ []byte) [][]byte { return [][]byte{c.reply(tid, unit)} })
		tr := srv.transport(5 * time.Second)
		_, err := Do(context.Background(), tr, 5, ReadHoldingRegisters(0, 1))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		tr.Close()
		if _, err := Do(context.Background(), tr, 5, ReadHoldingRegisters(0, 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	}
}
