// Package pgtest runs a real PostgreSQL server (Debian's postgresql package)
// in a temporary directory, on a free loopback port, for tests and for the
// load harness. initdb and pg_ctl come from /usr/lib/postgresql/*/bin; when
// they are missing Start installs the package with apt-get (as root).
//
// PostgreSQL refuses to run as root: as root the server runs as the
// "postgres" user (created by the package), or "nobody", and the data
// directory is handed to that user.
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// ErrPostgres reports that no server could be started.
var ErrPostgres = errors.New("pgtest: postgres")

// Server is one running PostgreSQL server.
type Server struct {
	DSN  string // postgres://townlink@127.0.0.1:port/townlink?sslmode=disable
	Port int

	bin, data, logf string
	runAs           string // "" when not root
}

// Start starts a server in t.TempDir() and stops it at cleanup. A server
// that cannot be started fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// StartDir creates a database cluster in dir/pg (dir must exist) and starts
// it. The database "townlink" and the superuser "townlink" exist, with
// trust authentication on loopback only.
func StartDir(dir string) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, data: filepath.Join(dir, "pg"), logf: filepath.Join(dir, "pg.log")}
	if os.Geteuid() == 0 {
		if s.runAs, err = serverUser(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPostgres, err)
	}
	if err := s.own(dir); err != nil {
		return nil, err
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "townlink", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("%w: initdb: %w\n%s", ErrPostgres, err, out)
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200", s.Port, s.data)
	if out, err := s.run("pg_ctl", "-D", s.data, "-l", s.logf, "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(s.logf)
		return nil, fmt.Errorf("%w: pg_ctl start: %w\n%s\n%s", ErrPostgres, err, out, log)
	}
	if out, err := s.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "townlink", "townlink"); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w: createdb: %w\n%s", ErrPostgres, err, out)
	}
	s.DSN = fmt.Sprintf("postgres://townlink@127.0.0.1:%d/townlink?sslmode=disable", s.Port)
	return s, nil
}

// Stop shuts the server down (fast mode) and waits for it.
func (s *Server) Stop() error {
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("%w: pg_ctl stop: %w\n%s", ErrPostgres, err, out)
	}
	return nil
}

// BinDir finds the newest /usr/lib/postgresql/*/bin holding initdb,
// installing Debian's postgresql package first when there is none.
func BinDir() (string, error) {
	if d := findBin(); d != "" {
		return d, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: no /usr/lib/postgresql/*/bin/initdb; install it: apt-get install postgresql", ErrPostgres)
	}
	cmd := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: apt-get install postgresql: %w\n%s", ErrPostgres, err, out)
	}
	if d := findBin(); d != "" {
		return d, nil
	}
	return "", fmt.Errorf("%w: postgresql installed but no initdb found", ErrPostgres)
}

func findBin() string {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return ""
	}
	sort.Slice(m, func(i, j int) bool { return version(m[i]) < version(m[j]) })
	return filepath.Dir(m[len(m)-1])
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func serverUser() (string, error) {
	for _, name := range []string{"postgres", "nobody"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: running as root and neither user postgres nor nobody exists", ErrPostgres)
}

// own hands dir (and the path down to it) to the server's user.
func (s *Server) own(dir string) error {
	if s.runAs == "" {
		return nil
	}
	u, err := user.Lookup(s.runAs)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPostgres, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("%w: chown %s: %w", ErrPostgres, dir, err)
	}
	// The server's user must be able to walk down to dir (t.TempDir's
	// parents are 0700 and root's).
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPostgres, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("%w: %w", ErrPostgres, err)
			}
		}
	}
	return nil
}

func (s *Server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrPostgres, err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p > 0 {
			return p, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%w: no free port", ErrPostgres)
}
